package imapmail

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// selectMailbox selects name (read-write, with CONDSTORE when offered)
// unless it is selected already and force is false.
func (s *session) selectMailbox(name string, force bool) (*imap.SelectData, error) {
	if !force && s.selected == name && s.sel != nil {
		return s.sel, nil
	}
	s.selected, s.sel = "", nil
	data, err := s.cl.Select(name, &imap.SelectOptions{CondStore: s.caps.CondStore}).Wait()
	if err != nil {
		err = serverError(fmt.Errorf("select: %w", err), name)
		var ie *imap.Error
		if !errors.Is(err, ErrNoMailbox) && errors.As(err, &ie) && s.missing(name) {
			// Dovecot answers NO without NONEXISTENT: ask LIST.
			err = fmt.Errorf("%q: %w: %w", name, ErrNoMailbox, err)
		}
		return nil, err
	}
	s.selected, s.sel = name, data
	return data, nil
}

// selectChecked selects name and checks its UIDVALIDITY against want (0:
// no check).
func (s *session) selectChecked(name string, want uint32) (*imap.SelectData, error) {
	sel, err := s.selectMailbox(name, false)
	if err != nil {
		return nil, err
	}
	if want != 0 && sel.UIDValidity != want {
		return nil, fmt.Errorf("%q: have %d, want %d: %w", name, sel.UIDValidity, want, ErrUIDValidity)
	}
	return sel, nil
}

type pendingSearch struct{ cmd *imapclient.SearchCommand }

// searchAll sends UID SEARCH ALL (ESEARCH RETURN (ALL) when offered, for a
// compact answer) without waiting.
func (s *session) searchAll() pendingSearch {
	return s.search(&imap.SearchCriteria{})
}

func (s *session) search(c *imap.SearchCriteria) pendingSearch {
	var opts *imap.SearchOptions
	if s.caps.ESearch {
		opts = &imap.SearchOptions{ReturnAll: true}
	}
	return pendingSearch{s.cl.UIDSearch(c, opts)}
}

func (p pendingSearch) wait() (UIDSet, error) {
	data, err := p.cmd.Wait()
	if err != nil {
		return UIDSet{}, err
	}
	if set, ok := data.All.(imap.UIDSet); ok {
		return uidSetFromIMAP(set), nil
	}
	return UIDSet{}, nil
}

// missing reports whether LIST shows no mailbox called name.
func (s *session) missing(name string) bool {
	data, err := s.cl.List("", name, nil).Collect()
	if err != nil {
		return false
	}
	for _, d := range data {
		if d.Mailbox == name || (strings.EqualFold(name, "INBOX") && strings.EqualFold(d.Mailbox, "INBOX")) {
			return slices.Contains(d.Attrs, imap.MailboxAttrNonExistent) || slices.Contains(d.Attrs, imap.MailboxAttrNoSelect)
		}
	}
	return true
}
