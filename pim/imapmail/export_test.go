package imapmail

import (
	"context"

	"github.com/emersion/go-imap/v2"
)

// storeFlag adds any flag (system flags included) to one message, for tests.
func (c *Client) storeFlag(ctx context.Context, mailbox string, uid uint32, flag string) error {
	return c.do(ctx, "store", false, func(s *session) error {
		if _, err := s.selectMailbox(mailbox, false); err != nil {
			return err
		}
		return s.cl.Store(imap.UIDSetNum(imap.UID(uid)), &imap.StoreFlags{
			Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.Flag(flag)},
		}, nil).Close()
	})
}
