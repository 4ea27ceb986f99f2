// Package reconcile makes the decisions for one mapped CRM <-> PIM pair,
// with no I/O: the 3-way field merge against the last-synced snapshot, the
// change matrix (what happened on each side against the last sync -> what
// to do), the deletion rules as a data table, the choice of mappings for
// the verification job, the mass-deletion guard, and when a user action is
// applied (the immediate-sync table). docs/sync-rules.md states the rules.
//
// Entry points: Deltas (what the bridge observed of a pair -> its cell of
// the change matrix); Reconcile (change matrix, then Merge or Decide) for
// one pair; Merge for the field merge alone; Decide for a removal;
// SelectForVerification; Guard.Check; WhenApplied.
//
// It owns no state and must not import idmap, bridge, mapping or any pim
// connector; it imports only the crm package for entity names. Callers
// (bridge) read both sides and the snapshot, map them to canonical field
// strings (mapping), ask reconcile, apply the plan, and record the result
// in idmap in one transaction.
//
// Field values are canonical strings as produced by the mapping package;
// "" means empty, and a missing key is the same as "". Every function is
// deterministic: the same input always gives the same output.
package reconcile
