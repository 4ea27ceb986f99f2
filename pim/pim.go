// Package pim holds the types shared by every PIM-side adapter (CardDAV,
// CalDAV, IMAP) and by the bridge that drives them: object references,
// raw objects, and the typed errors adapters return.
//
// It imports only the standard library; adapters (pim/davcontacts,
// pim/davcalendar, pim/imapmail) import it, never the other way round.
package pim

// Ref names one object on a DAV server: its href (an absolute, escaped URL
// path such as "/alice/contacts/x.vcf") and its ETag kept verbatim as the
// server sent it (weak `W/"x"` and unquoted values included). ETags are
// compared byte for byte and sent back unchanged in If-Match.
type Ref struct {
	Href string
	ETag string
}

// Object is one DAV object with its raw bytes exactly as the server served
// them (line ends restored to CRLF when they came through XML). Adapters
// never decode and re-encode Data.
type Object struct {
	Href string
	ETag string
	Data []byte
}

// Ref returns the object's reference.
func (o Object) Ref() Ref { return Ref{Href: o.Href, ETag: o.ETag} }
