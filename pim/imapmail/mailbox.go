package imapmail

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// Special-use attributes (RFC 6154) as Mailbox.SpecialUse reports them.
const (
	SpecialSent    = `\Sent`
	SpecialDrafts  = `\Drafts`
	SpecialTrash   = `\Trash`
	SpecialJunk    = `\Junk`
	SpecialArchive = `\Archive`
	SpecialAll     = `\All`
	SpecialFlagged = `\Flagged`
)

// Mailbox is one mailbox as LIST reports it.
type Mailbox struct {
	Name  string
	Delim string // hierarchy delimiter, "" for a flat namespace
	// SpecialUse is the RFC 6154 attribute (SpecialSent...), "" for none.
	SpecialUse string
	// NoSelect is set for a hierarchy node that holds no messages.
	NoSelect bool
	Attrs    []string
}

var specialUses = []imap.MailboxAttr{
	imap.MailboxAttrSent, imap.MailboxAttrDrafts, imap.MailboxAttrTrash, imap.MailboxAttrJunk,
	imap.MailboxAttrArchive, imap.MailboxAttrAll, imap.MailboxAttrFlagged,
}

// Mailboxes lists every mailbox, with special-use attributes when the
// server offers SPECIAL-USE.
func (c *Client) Mailboxes(ctx context.Context) ([]Mailbox, error) {
	var out []Mailbox
	err := c.do(ctx, "list", true, func(s *session) error {
		var opts *imap.ListOptions
		if s.caps.SpecialUse {
			opts = &imap.ListOptions{ReturnSpecialUse: true}
		}
		data, err := s.cl.List("", "*", opts).Collect()
		if err != nil {
			return err
		}
		out = out[:0]
		for _, d := range data {
			m := Mailbox{Name: d.Mailbox}
			if d.Delim != 0 {
				m.Delim = string(d.Delim)
			}
			for _, a := range d.Attrs {
				m.Attrs = append(m.Attrs, string(a))
				if a == imap.MailboxAttrNoSelect || a == imap.MailboxAttrNonExistent {
					m.NoSelect = true
				}
				if i := slices.IndexFunc(specialUses, func(su imap.MailboxAttr) bool {
					return strings.EqualFold(string(su), string(a))
				}); i >= 0 && m.SpecialUse == "" {
					m.SpecialUse = string(specialUses[i])
				}
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// SpecialUse returns the name of the first mailbox with the special-use
// attribute use (SpecialDrafts, SpecialSent...). Without SPECIAL-USE, or
// when no mailbox has it, it falls back to the usual names ("Drafts",
// "Sent", "Sent Items"... case-insensitively, at top level or under
// INBOX). It returns ErrNoMailbox when nothing matches.
func (c *Client) SpecialUse(ctx context.Context, use string) (string, error) {
	mbs, err := c.Mailboxes(ctx)
	if err != nil {
		return "", err
	}
	return findSpecialUse(mbs, use)
}

var fallbackNames = map[string][]string{
	SpecialSent:    {"Sent", "Sent Items", "Sent Messages", "Sent Mail"},
	SpecialDrafts:  {"Drafts", "Draft"},
	SpecialTrash:   {"Trash", "Deleted Items", "Deleted Messages"},
	SpecialJunk:    {"Junk", "Spam", "Junk E-mail"},
	SpecialArchive: {"Archive", "Archives"},
}

func findSpecialUse(mbs []Mailbox, use string) (string, error) {
	for _, m := range mbs {
		if strings.EqualFold(m.SpecialUse, use) && !m.NoSelect {
			return m.Name, nil
		}
	}
	for _, name := range fallbackNames[use] {
		for _, m := range mbs {
			leaf := m.Name
			if m.Delim != "" && strings.HasPrefix(strings.ToUpper(leaf), "INBOX"+m.Delim) {
				leaf = leaf[len("INBOX"+m.Delim):]
			}
			if strings.EqualFold(leaf, name) && !m.NoSelect {
				return m.Name, nil
			}
		}
	}
	return "", fmt.Errorf("imapmail: special use %s: %w", use, ErrNoMailbox)
}

// Delimiter returns the server's hierarchy delimiter ("/" on Dovecot's
// default namespace, "." on many others), "" for a flat namespace. Join
// folder paths such as CRM/Regarding/<name> with it.
func (c *Client) Delimiter(ctx context.Context) (string, error) {
	var delim string
	err := c.do(ctx, "delimiter", true, func(s *session) error {
		data, err := s.cl.List("", "", nil).Collect()
		if err != nil {
			return err
		}
		for _, d := range data {
			if d.Delim != 0 {
				delim = string(d.Delim)
			}
		}
		return nil
	})
	return delim, err
}

// Create creates mailbox (and its parents, which servers create as
// needed); an existing mailbox is not an error.
func (c *Client) Create(ctx context.Context, mailbox string) error {
	return c.do(ctx, "create "+mailbox, true, func(s *session) error {
		err := s.cl.Create(mailbox, nil).Wait()
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists {
			return nil
		}
		return err
	})
}

// Delete deletes mailbox; a missing one is ErrNoMailbox.
func (c *Client) Delete(ctx context.Context, mailbox string) error {
	return c.do(ctx, "delete "+mailbox, false, func(s *session) error {
		if s.selected == mailbox {
			if err := s.cl.Unselect().Wait(); err != nil {
				return err
			}
			s.selected, s.sel = "", nil
		}
		return serverError(s.cl.Delete(mailbox).Wait(), mailbox)
	})
}

// Namespace is the user's personal namespace (RFC 2342): the prefix of
// the mailboxes a user may create ("" on Dovecot, "INBOX." on Debian's
// stock Cyrus) and its hierarchy delimiter. Others are the prefixes of the
// other users' and shared namespaces ("user.", "").
type Namespace struct {
	Prefix string
	Delim  string // "" for a flat namespace
	Others []string
}

// Namespace returns the personal namespace: by NAMESPACE when the server
// offers it, else prefix "" and the delimiter of LIST "" "".
func (c *Client) Namespace(ctx context.Context) (Namespace, error) {
	var ns Namespace
	err := c.do(ctx, "namespace", true, func(s *session) error {
		ns = Namespace{}
		if s.cl.Caps().Has(imap.CapNamespace) {
			data, err := s.cl.Namespace().Wait()
			if err != nil {
				return err
			}
			if len(data.Personal) > 0 {
				ns.Prefix = data.Personal[0].Prefix
				if data.Personal[0].Delim != 0 {
					ns.Delim = string(data.Personal[0].Delim)
				}
				for _, d := range slices.Concat(data.Other, data.Shared) {
					if d.Prefix != "" {
						ns.Others = append(ns.Others, d.Prefix)
					}
				}
				return nil
			}
		}
		data, err := s.cl.List("", "", nil).Collect()
		if err != nil {
			return err
		}
		for _, d := range data {
			if d.Delim != 0 {
				ns.Delim = string(d.Delim)
			}
		}
		return nil
	})
	return ns, err
}

// Path turns a folder path written with "/" (as in the configuration)
// into the server's mailbox name: "/" becomes the delimiter and the
// personal prefix is put in front unless the path already starts with it
// or with another namespace's prefix. "INBOX" stays "INBOX".
func (ns Namespace) Path(p string) string {
	if strings.EqualFold(p, "INBOX") {
		return "INBOX"
	}
	if ns.Delim != "" && ns.Delim != "/" {
		p = strings.ReplaceAll(p, "/", ns.Delim)
	}
	if ns.Prefix == "" || hasPrefixFold(p, ns.Prefix) {
		return p
	}
	for _, o := range ns.Others {
		if hasPrefixFold(p, o) {
			return p
		}
	}
	return ns.Prefix + p
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
