package mailtrack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"unicode"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/pim/imapmail"
)

// The Regarding folders are kept in the cache as one setting (folder ->
// record), so that a folder keeps meaning its record when the record is
// renamed (the new name gets a new folder, the old one still works) and
// while the CRM cannot be reached.

func (t *Tracker) loadRegarding(ctx context.Context) error {
	t.regarding = map[string]crm.Ref{}
	if t.regRoot == "" {
		return nil
	}
	v, err := t.opts.Cache.Setting(ctx, t.settingKey("regarding"))
	if errors.Is(err, idmap.ErrNoSetting) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mailtrack: load regarding folders: %w", err)
	}
	if err := json.Unmarshal([]byte(v), &t.regarding); err != nil {
		t.log.Warn("mailtrack: regarding folders setting unreadable; rebuilding", "err", err)
		t.regarding = map[string]crm.Ref{}
	}
	return nil
}

// RegardingFolder returns the folder the tracker keeps (or would keep) for
// a record, as of the last Cycle; "" if it has none.
func (t *Tracker) RegardingFolder(ref crm.Ref) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	best := ""
	for f, r := range t.regarding {
		if r.Entity == ref.Entity && r.ID == ref.ID && (best == "" || f < best) {
			best = f
		}
	}
	return best
}

// folderName makes a mailbox name component of a record name: no
// delimiter, no control or IMAP wildcard characters, trimmed.
func folderName(name, delim string) string {
	name = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsControl(r), r == '%', r == '*', r == '"', r == '\\':
			return -1
		case delim != "" && strings.ContainsRune(delim, r):
			return '-'
		}
		return r
	}, name)
	name = strings.Join(strings.Fields(name), " ")
	if len(name) > 80 {
		name = strings.ToValidUTF8(name[:80], "")
	}
	return strings.Trim(name, ". ")
}

// folderItem is how a folder shows in the sync errors.
func (t *Tracker) folderItem(folder string) string {
	return "imap:" + t.account + ":folder " + folder
}

// refreshRegarding reads the user's accounts and contacts, gives each a
// folder under the Regarding root (creating missing folders) and stores
// the folder -> record table. It returns how many folders the server
// refused to create (each a sync error).
func (t *Tracker) refreshRegarding(ctx context.Context) (int, error) {
	type rec struct {
		ref  crm.Ref
		name string
	}
	var recs []rec
	for _, q := range []struct {
		entity, name string
		sel          []string
	}{
		{crm.EntityAccount, "name", []string{"name"}},
		{crm.EntityContact, "fullname", []string{"fullname", "firstname", "lastname"}},
	} {
		rs, err := t.opts.CRM.QueryAll(ctx, q.entity, crmclient.Query{Select: q.sel, Filter: "ownerid eq @me", OrderBy: q.name})
		if err != nil {
			return 0, fmt.Errorf("mailtrack: regarding: query %s: %w", q.entity, err)
		}
		for _, r := range rs {
			name, _ := r.Attrs[q.name].(string)
			if name == "" && q.entity == crm.EntityContact {
				f, _ := r.Attrs["firstname"].(string)
				l, _ := r.Attrs["lastname"].(string)
				name = strings.TrimSpace(f + " " + l)
			}
			recs = append(recs, rec{crm.Ref{Entity: q.entity, ID: r.ID, Name: name}, folderName(name, t.delim)})
		}
	}
	// Names shared by several records get the start of the id appended.
	count := map[string]int{}
	for _, r := range recs {
		count[strings.ToLower(r.name)]++
	}
	next := maps.Clone(t.regarding)
	have := map[crm.ID]bool{}
	for _, r := range t.regarding {
		have[r.ID] = true
	}
	var create []string
	for _, r := range recs {
		n := r.name
		if n == "" || count[strings.ToLower(n)] > 1 {
			n = strings.TrimSpace(n + " " + r.ref.ID.String()[:8])
		}
		f := t.regRoot + t.delim + n
		if old, ok := next[f]; ok && old.ID == r.ref.ID {
			continue
		}
		if _, taken := next[f]; taken {
			continue // an older record holds the name
		}
		next[f] = r.ref
		create = append(create, f)
	}
	mbs, err := t.opts.Mailbox.Mailboxes(ctx)
	if err != nil {
		return 0, fmt.Errorf("mailtrack: regarding: list: %w", err)
	}
	exists := map[string]bool{}
	for _, m := range mbs {
		exists[m.Name] = !m.NoSelect
	}
	for f := range next {
		if !exists[f] && !contains(create, f) {
			create = append(create, f)
		}
	}
	// A folder the server refuses is one sync error: the others are
	// created and the cycle goes on; the next refresh tries it again.
	refused := map[string]error{}
	var created []string
	for _, f := range create {
		if exists[f] {
			continue
		}
		err := t.opts.Mailbox.Create(ctx, f)
		var ce *imapmail.ConnError
		switch {
		case err == nil:
			created = append(created, f)
		case errors.As(err, &ce) || ctx.Err() != nil:
			return 0, fmt.Errorf("mailtrack: regarding: create %s: %w", f, err)
		default: // the server's NO or BAD
			t.log.Warn("mailtrack: regarding folder refused by the server", "folder", f, "err", err)
			refused[f] = err
			delete(next, f)
		}
	}
	b, err := json.Marshal(next)
	if err != nil {
		return 0, err
	}
	if err := t.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
		for f, err := range refused {
			if _, err := tx.PutSyncError(ctx, idmap.SyncError{Item: t.folderItem(f), Message: "create folder: " + err.Error()}); err != nil {
				return err
			}
		}
		for _, f := range created {
			if err := tx.ClearSyncError(ctx, t.folderItem(f)); err != nil {
				return err
			}
		}
		return tx.SetSetting(ctx, t.settingKey("regarding"), string(b))
	}); err != nil {
		return 0, fmt.Errorf("mailtrack: regarding: %w", err)
	}
	t.regarding = next
	t.regRefresh = t.now()
	clear(t.parties) // addresses may have changed with the records
	return len(refused), nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// regardingOf returns the record a folder files its messages under.
func (t *Tracker) regardingOf(folder string) (crm.Ref, bool) {
	r, ok := t.regarding[folder]
	return r, ok
}
