// Package mailtrack tracks e-mail from IMAP into CRM (docs/sync-rules.md,
// E-mail, and the immediate-sync table's e-mail rows).
//
// A message is tracked when it carries the track keyword ($CRMTracked by
// default, compared case-insensitively) in a watched folder (INBOX and Sent
// by default), or when it is filed into a folder under the Regarding root
// (CRM/Regarding/<name>), which the tracker keeps for the user's accounts
// and contacts; a message there gets the folder's record as regarding, and
// moving it to another Regarding folder changes the regarding. The tracker
// sets the keyword on what it tracked. Removing the keyword untracks: the
// CRM email is deleted only with UntrackDeletesInCRM, else the pair is just
// unlinked. Drafts (\Draft, or the Drafts folder) are never tracked; a sent
// message is tracked when it appears in Sent with the keyword or, with
// TrackReplies, when it replies to a tracked message. A message deleted on
// IMAP keeps its CRM email; an email deleted in CRM leaves the message
// alone.
//
// One Message-ID is one CRM email however often it is tracked (two
// folders, two bridges, primary and secondary): the CRM id is derived from
// the normalized Message-ID (UUIDv5 over a fixed namespace; a hash of
// stable header fields when there is none), the create is idempotent on
// the server, and an email that already carries the Message-ID is found by
// a messageid query and linked instead of created.
//
// # Crash safety
//
// A cycle runs in two phases. Detect reads each folder's changes
// (imapmail.Changes) and, in one idmap transaction per folder, records the
// decisions as pending changes (mapping rows plus OutlookSyncTable rows)
// together with the folder's cursor. Apply then works through the due
// pending changes: every step is idempotent (client-chosen CRM ids, STORE
// +FLAGS), and a pending row is completed only once CRM and IMAP agree.
// A kill -9 at any point therefore converges on the next cycle with no
// duplicate and no lost tracking. A UIDVALIDITY change re-links the
// folder's mappings by Message-ID.
//
// It imports crm, crmclient (for its request types), pim/imapmail, mapping
// and idmap; never cmd or the DAV bridge. RFCs: 9051/3501 (IMAP keywords,
// UIDVALIDITY), 7162 (CONDSTORE, through imapmail), 5322 (Message-ID,
// In-Reply-To, References), 4122 (UUIDv5), 6154 (special-use Drafts/Sent).
package mailtrack
