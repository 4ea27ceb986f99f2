// Package imapmail is pimbridge's IMAP adapter: it connects to a mail
// server, keeps a per-mailbox change cursor, and reads, tags, files and
// watches messages for e-mail tracking (docs/sync-rules.md, E-mail).
//
// It owns the IMAP wire protocol over go-imap v2's imapclient, and works
// around that library's gaps: it applies
// context.Context itself (connection deadlines, Close on ctx.Done), never
// uses QRESYNC (expunges are found by comparing UID sets), validates
// keywords as atoms before they reach the wire, compares keywords
// case-insensitively, refuses MOVE's COPY+EXPUNGE fallback on servers
// without UIDPLUS, and reconnects with backoff whenever the connection
// breaks. It imports no other pimbridge package; the bridge declares the
// interface it calls.
//
// RFCs: 3501 and 9051 (IMAP4rev1/rev2), 7162 (CONDSTORE), 2177 (IDLE),
// 6851 (MOVE), 4315 (UIDPLUS), 6154 (SPECIAL-USE), 4731 (ESEARCH), 4616
// (SASL PLAIN), 5322 (messages); XOAUTH2 as documented by Google and
// Microsoft.
//
// A Client serialises its calls on one connection. Watch opens a second
// connection owned by one goroutine.
package imapmail
