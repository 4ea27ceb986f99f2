package mapping

import (
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// Options tune the mapping. A nil *Options is the zero value, and the zero
// value of every field is documented.
type Options struct {
	// Now is the clock for DTSTAMP and REV. Nil means time.Now.
	Now func() time.Time
	// NewUID returns the UID of a new object. Nil means the record's ID
	// (or a random UUID when the record has none).
	NewUID func() string
	// ProdID is the PRODID of new objects. Empty means
	// "-//pimbridge//pimbridge//EN".
	ProdID string
	// Location interprets floating times (no TZID, no Z). Nil means UTC.
	Location *time.Location
	// Company, when SetCompany is true, is written to the company component
	// of ORG (the contact's parent account name; one way, CRM to PIM). It is
	// never read back. SetCompany false leaves the company as it is.
	Company    string
	SetCompany bool
	// Categories are written as the CATEGORIES of a new object (NewVCard,
	// NewICal); Patch* never touch CATEGORIES. Nil writes none.
	Categories []string
	// MaxAttachmentSize caps the size of an e-mail attachment carried into
	// CRM; a larger one is listed with its size but without its body. Zero
	// means 25 MiB; negative means no attachment bodies at all.
	MaxAttachmentSize int64
	// ResolveParty resolves an e-mail address to a systemuser, account or
	// contact. Nil, or a nil result, leaves Party.Party nil (the bridge
	// resolves later).
	ResolveParty func(address string) *crm.Ref
}

func (o *Options) now() time.Time {
	if o == nil || o.Now == nil {
		return time.Now().UTC()
	}
	return o.Now().UTC()
}

// categoriesLine returns the CATEGORIES line of a new object, CRLF
// included, or "" when there are none.
func (o *Options) categoriesLine() string {
	if o == nil || len(o.Categories) == 0 {
		return ""
	}
	esc := make([]string, len(o.Categories))
	for i, c := range o.Categories {
		esc[i] = escapeText(c)
	}
	var b strings.Builder
	foldLine(&b, "CATEGORIES:"+strings.Join(esc, ","), "\r\n")
	return b.String()
}

func (o *Options) prodID() string {
	if o == nil || o.ProdID == "" {
		return "-//pimbridge//pimbridge//EN"
	}
	return o.ProdID
}

func (o *Options) location() *time.Location {
	if o == nil || o.Location == nil {
		return time.UTC
	}
	return o.Location
}

func (o *Options) uid(rec crm.Record) string {
	if o != nil && o.NewUID != nil {
		return o.NewUID()
	}
	if rec.ID != (crm.ID{}) {
		return rec.ID.String()
	}
	return crm.NewID().String()
}

func (o *Options) maxAttachment() int64 {
	if o == nil || o.MaxAttachmentSize == 0 {
		return 25 << 20
	}
	return o.MaxAttachmentSize
}

func (o *Options) party(addr, name string) crm.Party {
	p := crm.Party{Address: addr, Name: name}
	if o != nil && o.ResolveParty != nil && addr != "" {
		p.Party = o.ResolveParty(addr)
	}
	return p
}
