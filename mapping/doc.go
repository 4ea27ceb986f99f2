// Package mapping converts between CRM records (package crm) and the PIM
// formats: contacts <-> vCard (RFC 6350 4.0, RFC 2426 3.0, and vCard 2.1 on
// read), tasks, phone calls, letters and faxes <-> VTODO and appointments
// <-> VEVENT (RFC 5545), and e-mail messages (RFC 5322, MIME, RFC 2231,
// RFC 6532) -> CRM email records with attachments. The mapped fields are
// those of the Dynamics client's data mapping tables (MappedFields).
//
// The package is pure: no I/O, no database, no clock except Options.Now. It
// imports only crm, the standard library and go-message.
//
// Reading uses an own lenient content-line parser rather than go-vcard /
// go-ical: go-vcard mis-splits "\;" in N/ADR and silently drops lines, and
// go-ical fails a whole calendar on one bad line (and can panic). The
// parser records the byte range of every line, which the writer needs
// anyway.
//
// Writing an existing object is a patch (PatchVCard, PatchICal): only the
// lines of mapped properties whose value changes are rewritten (escaped,
// folded at 75 octets, in the object's own line endings and vCard version);
// every other byte is kept. New objects (NewVCard, NewICal) are vCard 3.0
// and iCalendar 2.0 with UID, PRODID and DTSTAMP. The CRM id travels in
// X-CRM-ID, the activity type of a VTODO in X-CRM-ENTITY, a statuscode the
// PIM side cannot express in X-CRM-STATUSCODE.
//
// # Broken or repaired
//
// Input from real clients is read the way those clients read it: one bad
// property or header never sinks an item. What is repaired or stepped around
// is listed as a Defect (Result.Defects, Email.Defects; each DefectKind has a
// stable name and a test in defect_test.go). The line runs here:
//
//   - An error (*ParseError wrapping ErrMalformed) only when nothing usable
//     is left: a message without a header block; a vCard or iCalendar
//     object without any component (or only components that are neither
//     cards, calendars, events nor to-dos), or with END closing another
//     BEGIN.
//   - E-mail, after Python's email.feedparser: an indented first header
//     line, whitespace-only or colon-less header lines, repeated
//     single-instance headers (To/Cc/Bcc merged, else the first wins), raw
//     8-bit headers (read in the message's charset, else Windows-1252),
//     undecodable encoded words (kept as written), unknown charsets and
//     transfer encodings, broken base64, unparsable Content-Type,
//     multiparts without a boundary, whose boundary never occurs (read as
//     text), with odd boundary spacing or without the closing boundary
//     (truncated: the last part runs to the end), unparsable addresses
//     (those that parse are kept) and dates.
//   - vCard and iCalendar: a value the CRM cannot hold — a year-less date
//     (--MMDD, or the 1604 of Apple and CardBook), a date outside
//     1753..9999, an unparsable date, time or duration — leaves its CRM
//     field as it was: the record holds nil and the Defect names the Field
//     (DefectFields); a caller merging the record keeps its own value
//     there. PatchVCard and PatchICal never rewrite or clear the PIM line
//     of such a field, nor an unparsable REV, DTSTAMP or LAST-MODIFIED.
//     Garbage alarm triggers, bad X-CRM-IDs, bad parameter lists, lines
//     without a colon, quoted-printable in vCard 3/4, non-UTF-8 iCalendar
//     text (Windows-1252) and missing BEGIN lines are repaired on reading;
//     the bytes stay as they are. A truncated object (no END) is mapped as
//     far as it goes; a patch that changes it also appends the missing END
//     lines.
//   - A value longer than its CRM column is cut (DefectTruncated).
//
// Snapshot is the canonical, comparable form of the mapped fields of a
// pair (the "OriginalXML") for the three-way merge.
package mapping
