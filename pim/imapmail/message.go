package imapmail

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// FetchMessage returns the raw RFC 5322 bytes of message uid in mailbox
// (BODY.PEEK[]: the \Seen flag is left alone). uidValidity, when non-zero,
// must match the mailbox's (else ErrUIDValidity). A missing UID is
// ErrNotFound.
func (c *Client) FetchMessage(ctx context.Context, mailbox string, uidValidity, uid uint32) ([]byte, error) {
	var out []byte
	err := c.do(ctx, fmt.Sprintf("fetch %s/%d", mailbox, uid), true, func(s *session) error {
		if _, err := s.selectChecked(mailbox, uidValidity); err != nil {
			return err
		}
		section := &imap.FetchItemBodySection{Peek: true}
		bufs, err := s.cl.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{
			UID: true, BodySection: []*imap.FetchItemBodySection{section},
		}).Collect()
		if err != nil {
			return err
		}
		for _, b := range bufs {
			if uint32(b.UID) == uid {
				if out = b.FindBodySection(section); out == nil {
					out = []byte{}
				}
				return nil
			}
		}
		return fmt.Errorf("uid %d: %w", uid, ErrNotFound)
	})
	return out, err
}

// SetKeyword adds keyword to the messages uids of mailbox; ClearKeyword
// removes it. The keyword must pass ValidKeyword; the mailbox must accept
// custom keywords (PERMANENTFLAGS with \* or the keyword, else
// ErrUnsupported). uidValidity, when non-zero, must match. UIDs that no
// longer exist are ignored. Both are idempotent and retried once on a new
// connection.
func (c *Client) SetKeyword(ctx context.Context, mailbox string, uidValidity uint32, uids []uint32, keyword string) error {
	return c.storeKeyword(ctx, "set keyword", imap.StoreFlagsAdd, mailbox, uidValidity, uids, keyword)
}

// ClearKeyword removes keyword from the messages uids; see SetKeyword.
func (c *Client) ClearKeyword(ctx context.Context, mailbox string, uidValidity uint32, uids []uint32, keyword string) error {
	return c.storeKeyword(ctx, "clear keyword", imap.StoreFlagsDel, mailbox, uidValidity, uids, keyword)
}

func (c *Client) storeKeyword(ctx context.Context, op string, how imap.StoreFlagsOp, mailbox string, uidValidity uint32, uids []uint32, keyword string) error {
	if err := ValidKeyword(keyword); err != nil {
		return err
	}
	if len(uids) == 0 {
		return nil
	}
	return c.do(ctx, op+" "+keyword, true, func(s *session) error {
		sel, err := s.selectChecked(mailbox, uidValidity)
		if err != nil {
			return err
		}
		if !keywordsAllowed(sel.PermanentFlags, keyword) {
			return fmt.Errorf("%q does not keep keyword %s: %w", mailbox, keyword, ErrUnsupported)
		}
		return s.cl.Store(UIDSetOf(uids...).imapSet(), &imap.StoreFlags{
			Op: how, Silent: true, Flags: []imap.Flag{imap.Flag(keyword)},
		}, nil).Close()
	})
}

// keywordsAllowed applies RFC 3501's PERMANENTFLAGS rule: absent means
// every flag is permanent; \* allows new keywords.
func keywordsAllowed(perm []imap.Flag, keyword string) bool {
	if len(perm) == 0 {
		return true
	}
	return slices.ContainsFunc(perm, func(f imap.Flag) bool {
		return f == imap.FlagWildcard || strings.EqualFold(string(f), keyword)
	})
}

// SearchMessageID returns the UIDs in mailbox whose Message-ID header is
// messageID (given with or without angle brackets), ascending.
func (c *Client) SearchMessageID(ctx context.Context, mailbox, messageID string) ([]uint32, error) {
	id := strings.Trim(strings.TrimSpace(messageID), "<>")
	if id == "" || strings.ContainsAny(id, "\r\n") {
		return nil, fmt.Errorf("imapmail: search message-id: bad id %q", messageID)
	}
	var out []uint32
	err := c.do(ctx, "search message-id", true, func(s *session) error {
		if _, err := s.selectMailbox(mailbox, false); err != nil {
			return err
		}
		set, err := s.search(&imap.SearchCriteria{
			Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "<" + id + ">"}},
		}).wait()
		if err != nil {
			return err
		}
		out = out[:0]
		set.All(func(u uint32) bool {
			out = append(out, u)
			return true
		})
		return nil
	})
	return out, err
}

// Move moves messages uids from mailbox to dest and returns the UIDs they
// got there (source UID -> destination UID) when the server reports them
// (UIDPLUS); else a nil map. It needs MOVE, or UIDPLUS for the COPY + UID
// EXPUNGE fallback (go-imap's plain EXPUNGE fallback would expunge every
// \Deleted message): otherwise ErrUnsupported. It is not retried.
func (c *Client) Move(ctx context.Context, mailbox string, uidValidity uint32, uids []uint32, dest string) (map[uint32]uint32, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	var out map[uint32]uint32
	err := c.do(ctx, "move "+mailbox+" -> "+dest, false, func(s *session) error {
		if !s.caps.Move && !s.caps.UIDPlus {
			return fmt.Errorf("neither MOVE nor UIDPLUS: %w", ErrUnsupported)
		}
		if _, err := s.selectChecked(mailbox, uidValidity); err != nil {
			return err
		}
		data, err := s.cl.Move(UIDSetOf(uids...).imapSet(), dest).Wait()
		if err != nil {
			return serverError(err, dest)
		}
		src, _ := data.SourceUIDs.(imap.UIDSet)
		dst, _ := data.DestUIDs.(imap.UIDSet)
		srcUIDs, ok1 := src.Nums()
		dstUIDs, ok2 := dst.Nums()
		if ok1 && ok2 && len(srcUIDs) == len(dstUIDs) && len(srcUIDs) > 0 {
			out = make(map[uint32]uint32, len(srcUIDs))
			for i := range srcUIDs {
				out[uint32(srcUIDs[i])] = uint32(dstUIDs[i])
			}
		}
		return nil
	})
	return out, err
}

// Append stores msg in mailbox with flags and the internal date (zero:
// now), and returns the UIDVALIDITY and UID it got (0, 0 without UIDPLUS).
// Flags that are not system flags must pass ValidKeyword. It is not
// retried.
func (c *Client) Append(ctx context.Context, mailbox string, flags []string, date time.Time, msg []byte) (uidValidity, uid uint32, err error) {
	fl := make([]imap.Flag, 0, len(flags))
	for _, f := range flags {
		if !strings.HasPrefix(f, `\`) {
			if err := ValidKeyword(f); err != nil {
				return 0, 0, err
			}
		} else if err := ValidKeyword(f[1:]); err != nil {
			return 0, 0, err
		}
		fl = append(fl, imap.Flag(f))
	}
	err = c.do(ctx, "append "+mailbox, false, func(s *session) error {
		cmd := s.cl.Append(mailbox, int64(len(msg)), &imap.AppendOptions{Flags: fl, Time: date})
		if _, err := cmd.Write(msg); err != nil {
			_ = cmd.Close()
			_, _ = cmd.Wait()
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		data, err := cmd.Wait()
		if err != nil {
			return serverError(err, mailbox)
		}
		uidValidity, uid = data.UIDValidity, uint32(data.UID)
		return nil
	})
	return uidValidity, uid, err
}
