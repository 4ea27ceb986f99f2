package imapmail

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Message is a new or changed message as Changes reports it.
type Message struct {
	UID    uint32
	ModSeq uint64 // 0 without CONDSTORE
	// Flags as the server sent them: keywords keep the server's case (Dovecot
	// keeps it, imapmemserver lower-cases); use HasFlag to test them.
	Flags        []string
	InternalDate time.Time
	Size         int64
	// MessageID is the Message-ID without angle brackets, "" when absent.
	MessageID  string
	InReplyTo  []string // without angle brackets
	References []string // without angle brackets
	// Header holds the fetched header fields (Options.HeaderFields) as raw
	// RFC 5322 text, for the mapping to parse.
	Header []byte
	// New is true for a message first seen by this call (UID above the
	// cursor's LastUID), false for one whose flags changed.
	New bool
}

// HasFlag reports whether the message carries flag, compared
// case-insensitively as RFC 3501 requires.
func (m *Message) HasFlag(flag string) bool {
	return slices.ContainsFunc(m.Flags, func(f string) bool { return strings.EqualFold(f, flag) })
}

// Draft reports whether the message has the \Draft flag.
func (m *Message) Draft() bool { return m.HasFlag(`\Draft`) }

// ChangeSet is the result of Changes.
type ChangeSet struct {
	Mailbox string
	// Messages are the new and changed messages, by ascending UID.
	Messages []Message
	// Expunged are UIDs of the cursor's KnownUIDs that no longer exist.
	Expunged []uint32
	// Resync is set when the mailbox's UIDVALIDITY is not the cursor's:
	// every UID the caller holds for this mailbox is void, Expunged is empty
	// and Messages lists the whole mailbox as new. Match messages again by
	// Message-ID.
	Resync bool
	// Cursor is the cursor to store with the changes and pass to the next
	// call.
	Cursor Cursor
}

// Changes reports what changed in mailbox since cur (the zero Cursor: the
// whole mailbox is new). With CONDSTORE it costs one SELECT when nothing
// changed, else one more round trip (UID FETCH 1:* CHANGEDSINCE pipelined
// with UID SEARCH ALL, compared with the known UIDs for expunges). Without
// CONDSTORE it fetches new messages and scans all flags, comparing them with
// the cursor's flag sets, then fetches the header fields of changed ones.
//
// A missing mailbox is ErrNoMailbox. The call is retried once on a new
// connection if the connection breaks.
func (c *Client) Changes(ctx context.Context, mailbox string, cur Cursor) (*ChangeSet, error) {
	var out *ChangeSet
	err := c.do(ctx, "changes "+mailbox, true, func(s *session) error {
		var err error
		out, err = c.changes(s, mailbox, cur)
		return err
	})
	return out, err
}

func (c *Client) changes(s *session, mailbox string, cur Cursor) (*ChangeSet, error) {
	sel, err := s.selectMailbox(mailbox, true)
	if err != nil {
		return nil, err
	}
	cs := &ChangeSet{Mailbox: mailbox}
	if cur.UIDValidity != 0 && cur.UIDValidity != sel.UIDValidity {
		c.log.Info("imap UIDVALIDITY changed; resync", "mailbox", mailbox,
			"old", cur.UIDValidity, "new", sel.UIDValidity)
		cs.Resync = true
		cur = Cursor{}
	}
	if cur.UIDValidity == 0 {
		cur = Cursor{} // never synced: everything is new
	}
	condstore := s.caps.CondStore && sel.HighestModSeq > 0
	if condstore && cur.UIDValidity != 0 && cur.HighestModSeq == sel.HighestModSeq &&
		int(sel.NumMessages) == cur.KnownUIDs.Len() {
		cs.Cursor = cur
		return cs, nil
	}
	if condstore {
		err = c.changesCondStore(s, sel, cur, cs)
	} else {
		err = c.changesScan(s, sel, cur, cs)
	}
	if err != nil {
		return nil, err
	}
	return cs, nil
}

func (c *Client) fetchOptions(s *session) *imap.FetchOptions {
	fields := c.opts.HeaderFields
	if fields == nil {
		fields = DefaultHeaderFields
	}
	return &imap.FetchOptions{
		UID:          true,
		Flags:        true,
		InternalDate: true,
		RFC822Size:   true,
		ModSeq:       s.caps.CondStore,
		BodySection:  []*imap.FetchItemBodySection{headerSection(fields)},
	}
}

func headerSection(fields []string) *imap.FetchItemBodySection {
	return &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: fields, Peek: true}
}

// all is the UID set "1:*".
var all = imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}

func (c *Client) changesCondStore(s *session, sel *imap.SelectData, cur Cursor, cs *ChangeSet) error {
	next := Cursor{UIDValidity: sel.UIDValidity, HighestModSeq: sel.HighestModSeq, LastUID: cur.LastUID}
	var exist UIDSet
	if sel.NumMessages > 0 {
		opts := c.fetchOptions(s)
		opts.ChangedSince = cur.HighestModSeq // 0: no CHANGEDSINCE
		fetch := s.cl.Fetch(all, opts)
		search := s.searchAll()
		bufs, err := fetch.Collect()
		var serr error
		exist, serr = search.wait()
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		if serr != nil {
			return fmt.Errorf("search: %w", serr)
		}
		opts.ChangedSince = 0
		if bufs, err = s.completeHeaders(bufs, opts); err != nil {
			return err
		}
		fields := opts.BodySection[0]
		for _, b := range bufs {
			if b.UID == 0 {
				continue
			}
			m := messageOf(b, fields)
			m.New = m.UID > cur.LastUID
			next.LastUID = max(next.LastUID, m.UID)
			cs.Messages = append(cs.Messages, m)
		}
		next.KnownUIDs = exist.UpTo(next.LastUID)
		// A new message whose UID SEARCH answer raced ahead of the FETCH is
		// known once fetched.
		next.KnownUIDs = next.KnownUIDs.Union(uidsOf(cs.Messages))
	}
	cs.Expunged = expunged(cur.KnownUIDs, exist)
	sortMessages(cs.Messages)
	cs.Cursor = next
	return nil
}

func (c *Client) changesScan(s *session, sel *imap.SelectData, cur Cursor, cs *ChangeSet) error {
	next := Cursor{UIDValidity: sel.UIDValidity, LastUID: cur.LastUID}
	type uidFlags struct {
		uid   uint32
		flags []string
	}
	var scanned []uidFlags
	var exist UIDSet
	if sel.NumMessages > 0 {
		opts := c.fetchOptions(s)
		opts.ModSeq = false
		// The two FETCHes run one after the other: go-imap routes each
		// answer to the first pending FETCH whose UID set holds it, and
		// "n:*" is answered with the last message even below n, so
		// pipelined they could steal each other's answers and deadlock.
		var newBufs []*imapclient.FetchMessageBuffer
		var err error
		if sel.UIDNext == 0 || uint32(sel.UIDNext) > cur.LastUID+1 {
			newBufs, err = s.cl.Fetch(imap.UIDSet{imap.UIDRange{Start: imap.UID(cur.LastUID + 1), Stop: 0}}, opts).Collect()
			if err != nil {
				return fmt.Errorf("fetch new: %w", err)
			}
			if newBufs, err = s.completeHeaders(newBufs, opts); err != nil {
				return err
			}
		}
		var scanBufs []*imapclient.FetchMessageBuffer
		if cur.LastUID > 0 {
			scanBufs, err = s.cl.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: imap.UID(cur.LastUID)}},
				&imap.FetchOptions{UID: true, Flags: true}).Collect()
			if err != nil {
				return fmt.Errorf("fetch flags: %w", err)
			}
		}
		var b uidSetBuilder
		var changed []uint32
		for _, buf := range scanBufs {
			uid := uint32(buf.UID)
			if uid == 0 || uid > cur.LastUID {
				continue
			}
			fl := flagStrings(buf.Flags)
			scanned = append(scanned, uidFlags{uid, fl})
			if old, ok := flagKeyOf(cur.FlagSets, uid); !ok || old != flagKey(fl) {
				changed = append(changed, uid)
			}
		}
		slices.SortFunc(scanned, func(a, b uidFlags) int { return int64cmp(int64(a.uid), int64(b.uid)) })
		for _, sf := range scanned {
			b.add(sf.uid)
		}
		fields := opts.BodySection[0]
		for _, buf := range newBufs {
			// "n:*" returns the last message even when its UID is below n.
			if buf.UID == 0 || uint32(buf.UID) <= cur.LastUID {
				continue
			}
			m := messageOf(buf, fields)
			m.New = true
			next.LastUID = max(next.LastUID, m.UID)
			scanned = append(scanned, uidFlags{m.UID, m.Flags})
			cs.Messages = append(cs.Messages, m)
		}
		if len(changed) > 0 {
			bufs, err := s.cl.Fetch(UIDSetOf(changed...).imapSet(), opts).Collect()
			if err != nil {
				return fmt.Errorf("fetch changed: %w", err)
			}
			if bufs, err = s.completeHeaders(bufs, opts); err != nil {
				return err
			}
			for _, buf := range bufs {
				if buf.UID == 0 || uint32(buf.UID) > cur.LastUID {
					continue
				}
				cs.Messages = append(cs.Messages, messageOf(buf, fields))
			}
		}
		exist = b.set().Union(uidsOf(cs.Messages))
	}
	slices.SortFunc(scanned, func(a, b uidFlags) int { return int64cmp(int64(a.uid), int64(b.uid)) })
	builders := map[string]*uidSetBuilder{}
	for _, sf := range scanned {
		k := flagKey(sf.flags)
		if builders[k] == nil {
			builders[k] = &uidSetBuilder{}
		}
		builders[k].add(sf.uid)
	}
	next.FlagSets = make(map[string]UIDSet, len(builders))
	for k, b := range builders {
		next.FlagSets[k] = b.set()
	}
	next.KnownUIDs = exist
	cs.Expunged = expunged(cur.KnownUIDs, exist)
	sortMessages(cs.Messages)
	cs.Cursor = next
	return nil
}

// completeHeaders fetches again the messages of bufs that came without the
// header section. go-imap hands an unsolicited FETCH (another session's
// flag change, announced while our FETCH runs) to the pending FETCH command
// when the UID is in its set, and then drops the real answer for that UID
// as a duplicate.
func (s *session) completeHeaders(bufs []*imapclient.FetchMessageBuffer, opts *imap.FetchOptions) ([]*imapclient.FetchMessageBuffer, error) {
	section := opts.BodySection[0]
	var missing []uint32
	for _, b := range bufs {
		if b.UID != 0 && b.FindBodySection(section) == nil {
			missing = append(missing, uint32(b.UID))
		}
	}
	if len(missing) == 0 {
		return bufs, nil
	}
	again, err := s.cl.Fetch(UIDSetOf(missing...).imapSet(), opts).Collect()
	if err != nil {
		return nil, fmt.Errorf("fetch headers again: %w", err)
	}
	byUID := make(map[imap.UID]*imapclient.FetchMessageBuffer, len(again))
	for _, b := range again {
		if b.FindBodySection(section) == nil {
			// Never report a message without its Message-ID: fail, and
			// let the caller retry from its unchanged cursor.
			return nil, fmt.Errorf("fetch headers again: uid %d came without them", b.UID)
		}
		byUID[b.UID] = b
	}
	out := bufs[:0]
	for _, b := range bufs {
		if b.UID != 0 && b.FindBodySection(section) == nil {
			nb, ok := byUID[b.UID]
			if !ok {
				continue // expunged meanwhile: the next call reports it
			}
			b = nb
		}
		out = append(out, b)
	}
	return out, nil
}

func expunged(known, exist UIDSet) []uint32 {
	var out []uint32
	known.Minus(exist).All(func(u uint32) bool {
		out = append(out, u)
		return true
	})
	return out
}

func uidsOf(ms []Message) UIDSet {
	uids := make([]uint32, len(ms))
	for i, m := range ms {
		uids[i] = m.UID
	}
	return UIDSetOf(uids...)
}

func sortMessages(ms []Message) {
	slices.SortFunc(ms, func(a, b Message) int { return int64cmp(int64(a.UID), int64(b.UID)) })
}

// flagStrings converts flags, dropping \Recent (session state, not a
// change of the message).
func flagStrings(fs []imap.Flag) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		if !strings.EqualFold(string(f), `\Recent`) {
			out = append(out, string(f))
		}
	}
	return out
}

// messageOf builds a Message from a FETCH answer; header parse errors give
// best-effort fields (raw values), never a failure.
func messageOf(b *imapclient.FetchMessageBuffer, section *imap.FetchItemBodySection) Message {
	m := Message{
		UID:          uint32(b.UID),
		ModSeq:       b.ModSeq,
		Flags:        flagStrings(b.Flags),
		InternalDate: b.InternalDate,
		Size:         b.RFC822Size,
		Header:       b.FindBodySection(section),
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(m.Header)))
	if err != nil && h.Len() == 0 {
		return m
	}
	mh := mail.Header{Header: message.Header{Header: h}}
	if id, err := mh.MessageID(); err == nil && id != "" {
		m.MessageID = id
	} else {
		m.MessageID = strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
	}
	m.InReplyTo = msgIDs(&mh, "In-Reply-To")
	m.References = msgIDs(&mh, "References")
	return m
}

func msgIDs(h *mail.Header, key string) []string {
	if ids, err := h.MsgIDList(key); err == nil {
		return ids
	}
	var out []string
	for f := range strings.FieldsSeq(h.Get(key)) {
		if f = strings.Trim(f, "<>,"); f != "" {
			out = append(out, f)
		}
	}
	return out
}
