package mailtrack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/pim/imapmail"
)

// Stats count what one Cycle did.
type Stats struct {
	Folders   int // folders read
	Changed   int // new or changed messages reported by the server
	Tracked   int // CRM emails created or linked
	Regarding int // regarding set or changed on an existing email
	Untracked int // pairs unlinked (or deleted in CRM) after the keyword went
	Deleted   int // tracked messages gone from IMAP (CRM email kept)
	Relinked  int // mappings moved to a new UID (UIDVALIDITY change, move)
	Failed    int // changes that failed this time (retried, or a sync error)
	Keywords  int // messages the tracker put the keyword on

	Duration time.Duration // wall time of the cycle (set by Run)
}

func (s *Stats) add(o Stats) {
	s.Folders += o.Folders
	s.Changed += o.Changed
	s.Tracked += o.Tracked
	s.Regarding += o.Regarding
	s.Untracked += o.Untracked
	s.Deleted += o.Deleted
	s.Relinked += o.Relinked
	s.Failed += o.Failed
	s.Keywords += o.Keywords
}

// Tracker tracks the e-mail of one IMAP account into CRM. Cycle may be
// called from one goroutine at a time; Run and Watch call it themselves.
type Tracker struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	account string
	keyword string

	mu sync.Mutex // serialises cycles; guards the fields below

	resolved    bool // folder names resolved
	folders     []string
	sent        string
	drafts      string
	regRoot     string // "" when disabled
	delim       string
	regarding   map[string]crm.Ref // Regarding folder -> record
	regRefresh  time.Time          // last refresh of regarding
	parties     map[string]*crm.Ref
	folderOK    map[string]bool               // watched folders read without a sync error
	needKeyword map[folderKey][]uint32        // keyword to set, whatever is pending
	haveKeyword map[folderKey]map[uint32]bool // seen with the keyword
}

type folderKey struct {
	mailbox     string
	uidValidity uint32
}

// New returns a Tracker. It does no I/O: folders are resolved on the first
// Cycle.
func New(opts Options) (*Tracker, error) {
	if opts.CRM == nil || opts.Mailbox == nil || opts.Cache == nil {
		return nil, errors.New("mailtrack: new: CRM, Mailbox and Cache are required")
	}
	t := &Tracker{opts: opts, log: opts.Logger, now: opts.Now, account: opts.Account, keyword: opts.TrackKeyword}
	if t.log == nil {
		t.log = slog.Default()
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.account == "" {
		t.account = "imap"
	}
	if t.keyword == "" {
		t.keyword = DefaultKeyword
	}
	if err := imapmail.ValidKeyword(t.keyword); err != nil {
		return nil, fmt.Errorf("mailtrack: new: %w", err)
	}
	t.log = t.log.With("account", t.account)
	t.parties = map[string]*crm.Ref{}
	t.needKeyword = map[folderKey][]uint32{}
	t.folderOK = map[string]bool{}
	t.haveKeyword = map[folderKey]map[uint32]bool{}
	return t, nil
}

// Folders returns the folders the tracker reads (watched plus Regarding),
// as of the last Cycle.
func (t *Tracker) Folders() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.allFoldersLocked()
}

func (t *Tracker) allFoldersLocked() []string {
	out := slices.Clone(t.folders)
	var reg []string
	for f := range t.regarding {
		if !slices.Contains(out, f) {
			reg = append(reg, f)
		}
	}
	slices.Sort(reg)
	return append(out, reg...)
}

// Cycle runs one tracking cycle: it (re)reads the Regarding folders when
// due, detects the changes of every folder and applies every due pending
// change. An error of one folder or one item does not stop the others; the
// first folder-level error is returned after the cycle, item failures are
// counted in Stats.Failed and retried (then become sync errors).
func (t *Tracker) Cycle(ctx context.Context) (Stats, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var st Stats
	if err := t.resolveLocked(ctx); err != nil {
		return st, err
	}
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if t.regRoot != "" && (t.regRefresh.IsZero() || t.now().Sub(t.regRefresh) >= durOr(t.opts.RegardingRefresh, 15*time.Minute)) {
		n, err := t.refreshRegarding(ctx)
		st.Failed += n
		if err != nil {
			t.log.Warn("mailtrack: regarding folders", "err", err)
			keep(err)
		}
	}
	for _, f := range t.allFoldersLocked() {
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		fs, err := t.detect(ctx, f)
		st.add(fs)
		watched := slices.Contains(t.folders, f)
		switch {
		case errors.Is(err, imapmail.ErrNoMailbox) && watched:
			// A folder the user named: a sync error, never skipped
			// silently.
			t.log.Warn("mailtrack: watched folder missing on the server", "folder", f)
			st.Failed++
			keep(t.folderError(ctx, f, "the folder does not exist on the server (imap.folders)"))
		case errors.Is(err, imapmail.ErrNoMailbox):
			t.log.Warn("mailtrack: folder missing", "folder", f)
		case err != nil:
			t.log.Warn("mailtrack: detect", "folder", f, "err", err)
			keep(err)
		case watched:
			keep(t.folderError(ctx, f, ""))
		}
	}
	as, err := t.apply(ctx)
	st.add(as)
	keep(err)
	return st, firstErr
}

// folderError records (msg != "") or clears (msg == "") the sync error of
// a folder. A folder is cleared once per Tracker, on its first good read.
func (t *Tracker) folderError(ctx context.Context, folder, msg string) error {
	if msg == "" && t.folderOK[folder] {
		return nil
	}
	err := t.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
		if msg == "" {
			return tx.ClearSyncError(ctx, t.folderItem(folder))
		}
		_, err := tx.PutSyncError(ctx, idmap.SyncError{Item: t.folderItem(folder), Message: msg})
		return err
	})
	if err != nil {
		return fmt.Errorf("mailtrack: folder %s: %w", folder, err)
	}
	t.folderOK[folder] = msg == ""
	return nil
}

func durOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// resolveLocked finds the Sent and Drafts folders, the watched folders and
// the Regarding root, once.
func (t *Tracker) resolveLocked(ctx context.Context) error {
	if t.resolved {
		return nil
	}
	mbs, err := t.opts.Mailbox.Mailboxes(ctx)
	if err != nil {
		return fmt.Errorf("mailtrack: list folders: %w", err)
	}
	ns, err := t.opts.Mailbox.Namespace(ctx)
	if err != nil {
		return fmt.Errorf("mailtrack: namespace: %w", err)
	}
	if ns.Delim == "" {
		for _, m := range mbs {
			if m.Delim != "" {
				ns.Delim = m.Delim
				break
			}
		}
	}
	t.delim = ns.Delim
	if t.delim == "" {
		t.delim = "/"
	}
	sent := specialUse(mbs, imapmail.SpecialSent, sentNames...)
	drafts := specialUse(mbs, imapmail.SpecialDrafts, draftsNames...)
	// path resolves a configured folder: a usual name of Sent or Drafts
	// is the special-use folder, anything else a path in the namespace.
	path := func(p string) string {
		switch {
		case sent != "" && slices.ContainsFunc(sentNames, func(n string) bool { return strings.EqualFold(n, p) }):
			return sent
		case drafts != "" && slices.ContainsFunc(draftsNames, func(n string) bool { return strings.EqualFold(n, p) }):
			return drafts
		}
		return ns.Path(p)
	}
	t.sent = sent
	if t.opts.SentFolder != "" {
		t.sent = path(t.opts.SentFolder)
	}
	t.drafts = drafts
	if t.opts.DraftsFolder != "" {
		t.drafts = path(t.opts.DraftsFolder)
	}
	t.folders = nil
	for _, f := range t.opts.Folders {
		if p := path(f); p != "" && !slices.Contains(t.folders, p) {
			t.folders = append(t.folders, p)
		}
	}
	if t.opts.Folders == nil {
		t.folders = []string{"INBOX"}
		if t.sent != "" {
			t.folders = append(t.folders, t.sent)
		}
	}
	switch t.opts.RegardingFolder {
	case "-":
		t.regRoot = ""
	case "":
		t.regRoot = ns.Path(DefaultRegardingFolder)
	default:
		t.regRoot = ns.Path(t.opts.RegardingFolder)
	}
	if err := t.loadRegarding(ctx); err != nil {
		return err
	}
	t.resolved = true
	return nil
}

// The usual names of the Sent and Drafts folders, for servers without
// SPECIAL-USE.
var (
	sentNames   = []string{"Sent", "Sent Items", "Sent Messages", "Sent Mail"}
	draftsNames = []string{"Drafts", "Draft"}
)

func specialUse(mbs []imapmail.Mailbox, use string, names ...string) string {
	for _, m := range mbs {
		if strings.EqualFold(m.SpecialUse, use) && !m.NoSelect {
			return m.Name
		}
	}
	for _, n := range names {
		for _, m := range mbs {
			leaf := m.Name
			if m.Delim != "" && strings.HasPrefix(strings.ToUpper(leaf), "INBOX"+m.Delim) {
				leaf = leaf[len("INBOX"+m.Delim):]
			}
			if strings.EqualFold(leaf, n) && !m.NoSelect {
				return m.Name
			}
		}
	}
	return ""
}

// state is what the tracker keeps in a mapping's snapshot (Fields): the
// message key and the regarding last written to CRM.
type state struct {
	Key       string   `json:"key"`
	Regarding *crm.Ref `json:"regarding,omitempty"`
	Synced    bool     `json:"synced,omitempty"` // the CRM email exists as far as the tracker knows
	Gen       int      `json:"gen,omitempty"`    // generation of the id (see EmailID)
}

func readState(ctx context.Context, q interface {
	Snapshot(context.Context, int64) (idmap.Snapshot, error)
}, mapID int64) (state, error) {
	var s state
	snap, err := q.Snapshot(ctx, mapID)
	if errors.Is(err, idmap.ErrNoSnapshot) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if len(snap.Fields) > 0 {
		if err := json.Unmarshal(snap.Fields, &s); err != nil {
			return state{}, fmt.Errorf("mailtrack: state of map %d: %w", mapID, err)
		}
	}
	return s, nil
}

func writeState(ctx context.Context, tx *idmap.Tx, mapID int64, s state) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return tx.PutSnapshot(ctx, mapID, idmap.Snapshot{Fields: b})
}

func (t *Tracker) settingKey(name string) string { return "mailtrack/" + t.account + "/" + name }

// lookup finds the mapping of a message key: by its generation-0 id, or by
// an alias recorded when the email has another id.
func (t *Tracker) lookup(ctx context.Context, q interface {
	ByCRM(context.Context, string, crm.ID) (idmap.Mapping, error)
	Setting(context.Context, string) (string, error)
}, key string) (idmap.Mapping, bool, error) {
	m, err := q.ByCRM(ctx, crm.EntityEmail, EmailID(key, 0))
	if err == nil {
		return m, true, nil
	}
	if !errors.Is(err, idmap.ErrUnmapped) {
		return m, false, err
	}
	alias, err := q.Setting(ctx, t.settingKey("alias/"+key))
	if err != nil || alias == "" {
		if errors.Is(err, idmap.ErrNoSetting) {
			err = nil
		}
		return idmap.Mapping{}, false, err
	}
	id, err := crm.ParseID(alias)
	if err != nil {
		return idmap.Mapping{}, false, nil
	}
	m, err = q.ByCRM(ctx, crm.EntityEmail, id)
	if errors.Is(err, idmap.ErrUnmapped) {
		return idmap.Mapping{}, false, nil
	}
	return m, err == nil, err
}
