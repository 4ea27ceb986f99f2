// Package mapping converts between CRM records (package crm) and the PIM
// formats: contacts <-> vCard (RFC 6350 4.0, RFC 2426 3.0, and vCard 2.1 on
// read), tasks, phone calls, letters and faxes <-> VTODO and appointments
// <-> VEVENT (RFC 5545), and e-mail messages (RFC 5322, MIME, RFC 2231,
// RFC 6532) -> CRM email records with attachments. The mapped fields are
// those of seed 004's Data Mapping tables (MappedFields).
//
// The package is pure: no I/O, no database, no clock except Options.Now. It
// imports only crm, the standard library and go-message.
//
// Reading uses an own lenient content-line parser rather than go-vcard /
// go-ical: go-vcard mis-splits "\;" in N/ADR and silently drops lines, and
// go-ical fails a whole calendar on one bad line (and can panic) — see
// LIBRARIES.md sections 4-5. The parser records the byte range of every
// line, which the writer needs anyway.
//
// Writing an existing object is a patch (PatchVCard, PatchICal): only the
// lines of mapped properties whose value changes are rewritten (escaped,
// folded at 75 octets, in the object's own line endings and vCard version);
// every other byte is kept. New objects (NewVCard, NewICal) are vCard 3.0
// and iCalendar 2.0 with UID, PRODID and DTSTAMP. The CRM id travels in
// X-CRM-ID, the activity type of a VTODO in X-CRM-ENTITY, a statuscode the
// PIM side cannot express in X-CRM-STATUSCODE.
//
// Snapshot is the canonical, comparable form of the mapped fields of a
// pair (the "OriginalXML") for the three-way merge.
package mapping
