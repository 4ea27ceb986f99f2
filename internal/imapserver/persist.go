package imapserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

const stateFile = "state.json"

type savedUser struct {
	// Creates counts the mailboxes ever created, which is the next
	// UIDVALIDITY imapmemserver hands out minus one.
	Creates   uint32         `json:"creates"`
	Mailboxes []savedMailbox `json:"mailboxes"`
}

type savedMailbox struct {
	Name        string         `json:"name"`
	UIDValidity uint32         `json:"uidvalidity"`
	UIDNext     uint32         `json:"uidnext"`
	SpecialUse  []string       `json:"special_use,omitempty"`
	Subscribed  bool           `json:"subscribed"`
	Messages    []savedMessage `json:"messages"`
}

type savedMessage struct {
	UID   uint32    `json:"uid"`
	Flags []string  `json:"flags"`
	Date  time.Time `json:"date"`
}

// Save writes every user's mailboxes to Options.Dir. It reads them over an
// IMAP connection to the server itself (imapmemserver has no other read
// access), so it must run before the listener closes.
func (s *Server) Save(ctx context.Context) error {
	if s.dir == "" {
		return nil
	}
	s.mu.Lock()
	accts := make([]*account, 0, len(s.accounts))
	for _, a := range s.accounts {
		accts = append(accts, a)
	}
	s.mu.Unlock()
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("imapserver: save: %w", err)
	}
	for _, a := range accts {
		if err := s.saveUser(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) dial(ctx context.Context, a *account) (*imapclient.Client, func(), error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr())
	if err != nil {
		return nil, nil, err
	}
	c := imapclient.New(conn, nil)
	stop := context.AfterFunc(ctx, func() { c.Close() })
	done := func() {
		stop()
		c.Close()
	}
	if err := c.Login(a.name, a.password).Wait(); err != nil {
		done()
		return nil, nil, err
	}
	return c, done, nil
}

func (s *Server) saveUser(ctx context.Context, a *account) error {
	c, done, err := s.dial(ctx, a)
	if err != nil {
		return fmt.Errorf("imapserver: save %s: %w", a.name, err)
	}
	defer done()

	tmp, err := os.MkdirTemp(s.dir, "."+a.name+".tmp-")
	if err != nil {
		return fmt.Errorf("imapserver: save %s: %w", a.name, err)
	}
	defer os.RemoveAll(tmp)

	a.mu.Lock()
	st := savedUser{Creates: a.creates}
	a.mu.Unlock()
	for i, name := range a.mailboxNames() {
		sel, err := c.Select(name, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return fmt.Errorf("imapserver: save %s/%s: %w", a.name, name, err)
		}
		a.mu.Lock()
		mb := savedMailbox{Name: name, UIDValidity: sel.UIDValidity, UIDNext: uint32(sel.UIDNext), Subscribed: a.subscribed[name]}
		for _, u := range a.specialUse[name] {
			mb.SpecialUse = append(mb.SpecialUse, string(u))
		}
		a.mu.Unlock()
		mbDir := filepath.Join(tmp, strconv.Itoa(i))
		if err := os.Mkdir(mbDir, 0o700); err != nil {
			return fmt.Errorf("imapserver: save: %w", err)
		}
		if sel.NumMessages > 0 {
			body := &imap.FetchItemBodySection{Peek: true}
			msgs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
				UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{body},
			}).Collect()
			if err != nil {
				return fmt.Errorf("imapserver: save %s/%s: fetch: %w", a.name, name, err)
			}
			for _, m := range msgs {
				sm := savedMessage{UID: uint32(m.UID), Date: m.InternalDate}
				for _, f := range m.Flags {
					sm.Flags = append(sm.Flags, string(f))
				}
				file := filepath.Join(mbDir, strconv.FormatUint(uint64(m.UID), 10)+".eml")
				if err := os.WriteFile(file, m.FindBodySection(body), 0o600); err != nil {
					return fmt.Errorf("imapserver: save: %w", err)
				}
				mb.Messages = append(mb.Messages, sm)
			}
		}
		st.Mailboxes = append(st.Mailboxes, mb)
	}
	if err := c.Unselect().Wait(); err != nil && len(st.Mailboxes) > 0 {
		return fmt.Errorf("imapserver: save %s: %w", a.name, err)
	}
	js, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("imapserver: save: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, stateFile), js, 0o600); err != nil {
		return fmt.Errorf("imapserver: save: %w", err)
	}
	// Swap the folders: old -> .old, tmp -> user, remove .old.
	final := filepath.Join(s.dir, a.name)
	old := final + ".old"
	os.RemoveAll(old)
	if err := os.Rename(final, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("imapserver: save: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("imapserver: save: %w", err)
	}
	return os.RemoveAll(old)
}

// restore loads the saved mailboxes of a (not yet served) account. It
// reports false when nothing was saved. UIDVALIDITY values are reproduced
// by creating (and deleting) placeholder mailboxes for the gaps, and UIDs
// by appending and expunging placeholder messages.
func (s *Server) restore(ctx context.Context, a *account) (bool, error) {
	if s.dir == "" {
		return false, nil
	}
	dir := filepath.Join(s.dir, a.name)
	js, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("imapserver: restore %s: %w", a.name, err)
	}
	var st savedUser
	if err := json.Unmarshal(js, &st); err != nil {
		return false, fmt.Errorf("imapserver: restore %s: %w", a.name, err)
	}
	byValidity := map[uint32]int{}
	for i, mb := range st.Mailboxes {
		byValidity[mb.UIDValidity] = i
		if mb.UIDValidity > st.Creates {
			st.Creates = mb.UIDValidity
		}
	}
	const gap = "\x00pimbridge-gap"
	for v := uint32(1); v <= st.Creates; v++ {
		i, ok := byValidity[v]
		if !ok {
			if err := a.create(gap, nil); err != nil {
				return false, fmt.Errorf("imapserver: restore %s: %w", a.name, err)
			}
			if err := a.user.Delete(gap); err != nil {
				return false, fmt.Errorf("imapserver: restore %s: %w", a.name, err)
			}
			a.mu.Lock()
			delete(a.names, gap)
			a.mu.Unlock()
			continue
		}
		mb := st.Mailboxes[i]
		var use []imap.MailboxAttr
		for _, u := range mb.SpecialUse {
			use = append(use, imap.MailboxAttr(u))
		}
		if err := a.create(mb.Name, use); err != nil {
			return false, fmt.Errorf("imapserver: restore %s/%s: %w", a.name, mb.Name, err)
		}
		if mb.Subscribed {
			if err := a.subscribe(mb.Name, true); err != nil {
				return false, fmt.Errorf("imapserver: restore %s/%s: %w", a.name, mb.Name, err)
			}
		}
		if err := restoreMessages(ctx, a.user, mb, filepath.Join(dir, strconv.Itoa(i))); err != nil {
			return false, fmt.Errorf("imapserver: restore %s/%s: %w", a.name, mb.Name, err)
		}
	}
	return true, nil
}

var placeholder = []byte("Subject: placeholder\r\n\r\n")

func restoreMessages(ctx context.Context, u *imapmemserver.User, mb savedMailbox, dir string) error {
	sort.Slice(mb.Messages, func(i, j int) bool { return mb.Messages[i].UID < mb.Messages[j].UID })
	var holes imap.UIDSet
	next := uint32(1)
	fill := func(upTo uint32) error {
		for ; next < upTo; next++ {
			d, err := u.Append(mb.Name, literal{bytes.NewReader(placeholder)}, &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDeleted}})
			if err != nil {
				return err
			}
			holes.AddNum(d.UID)
		}
		return nil
	}
	for _, m := range mb.Messages {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fill(m.UID); err != nil {
			return err
		}
		data, err := os.ReadFile(filepath.Join(dir, strconv.FormatUint(uint64(m.UID), 10)+".eml"))
		if err != nil {
			return err
		}
		var flags []imap.Flag
		for _, f := range m.Flags {
			flags = append(flags, imap.Flag(f))
		}
		d, err := u.Append(mb.Name, literal{bytes.NewReader(data)}, &imap.AppendOptions{Flags: flags, Time: m.Date})
		if err != nil {
			return err
		}
		if uint32(d.UID) != m.UID {
			return fmt.Errorf("restored UID %d, want %d", d.UID, m.UID)
		}
		next++
	}
	if err := fill(mb.UIDNext); err != nil {
		return err
	}
	if len(holes) == 0 {
		return nil
	}
	sess := imapmemserver.NewUserSession(u)
	defer sess.Close()
	if _, err := sess.Select(mb.Name, nil); err != nil {
		return err
	}
	return sess.Expunge(nil, &holes)
}
