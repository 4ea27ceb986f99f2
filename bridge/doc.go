// Package bridge runs the PIM sync of docs/sync-rules.md, the Outlook-style
// bridge: one cycle per item type (contacts <-> a CardDAV
// address book; tasks, phone calls, letters and faxes <-> VTODO in a CalDAV
// task list; appointments <-> VEVENT in a CalDAV calendar), with the client
// cache in idmap, the decisions of reconcile and the formats of mapping.
//
// A cycle has two phases. Intake records what changed on each side as
// pending changes in idmap: CRM-side changes come from the user's outlook
// subscription (prepare + batches; the pending rows commit before PostSync
// acknowledges the batch, so a crash re-reads the batch harmlessly),
// PIM-side changes from Collection.Changes (the new cursor commits in the
// same transaction as the pending rows it covers). Apply then takes each
// due pending pair, reads the current CRM record and PIM object, asks
// reconcile.Reconcile, and writes the later side first with If-Match on
// both sides; a 412 on either side re-reads and merges again. After each
// write the snapshot, raw PIM bytes and ETag commit in one transaction, so
// a crash at any point leaves a state from which the next cycle finishes.
//
// Identity: a new CRM record gets a PIM object at the href derived from its
// id (<id>.vcf or <id>.ics, created with If-None-Match: *; a 412 means it is
// already there and is linked); a new tracked PIM object gets a CRM record
// with a client-chosen id recorded in idmap before the POST (idempotent on
// retry). Every PIM object carries X-CRM-ID, so a lost cache re-links
// instead of duplicating.
//
// Only the primary bridge of a user (crmclient ClaimPrimary, fenced by a
// generation) syncs contacts, tasks and appointments; a secondary does not.
//
// Two more things live beside the cycle: duplicates.go (an item new on the
// PIM side that CRM duplicate detection matches is created, held back as a
// sync error, or linked to the existing record, per sync.duplicates and
// the user's resolution) and directory.go (the CRM accounts and users, one
// way, into an address book of their own over the addressbook
// subscription; Run makes a directory pass after each full cycle).
//
// The package declares the ports it drives (CRM, Collection) and imports
// crm, crmclient (for its JSON types), pim, mapping, reconcile and idmap. It
// must not import cmd, internal/* or any test server. RFCs: 6350, 5545,
// 6352, 4791, 6578, 7232.
package bridge
