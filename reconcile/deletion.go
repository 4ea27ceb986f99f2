package reconcile

import (
	"fmt"
	"strings"

	"github.com/pimbridge/pimbridge/crm"
)

// Kind is the item kind the deletion rules distinguish.
type Kind int

// Kinds.
const (
	KindContact     Kind = iota + 1
	KindAppointment      // VEVENT
	KindTask             // task, phone call, letter, fax (VTODO)
	KindEmail            // IMAP message
)

func (k Kind) String() string {
	switch k {
	case KindContact:
		return "contact"
	case KindAppointment:
		return "appointment"
	case KindTask:
		return "task"
	case KindEmail:
		return "email"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// KindOf returns the kind of a CRM entity logical name.
func KindOf(entity string) (Kind, bool) {
	switch entity {
	case crm.EntityContact:
		return KindContact, true
	case crm.EntityAppointment:
		return KindAppointment, true
	case crm.EntityTask, crm.EntityPhoneCall, crm.EntityLetter, crm.EntityFax:
		return KindTask, true
	case crm.EntityEmail:
		return KindEmail, true
	}
	return 0, false
}

// Event is the removal that happened to one side of a pair.
type Event int

// Events.
const (
	PIMDeleted   Event = iota + 1 // the PIM object was deleted (or found gone by verification)
	PIMUntracked                  // the user stopped tracking it (left the collection, lost the category or keyword)
	CRMDeleted                    // the CRM record was deleted
	LeftFilter                    // the CRM record left the user's filter or view (reassigned, no longer readable)
)

func (e Event) String() string {
	switch e {
	case PIMDeleted:
		return "deleted-on-pim"
	case PIMUntracked:
		return "untracked-on-pim"
	case CRMDeleted:
		return "deleted-in-crm"
	case LeftFilter:
		return "left-filter"
	}
	return fmt.Sprintf("Event(%d)", int(e))
}

// State is the CRM statecode of an activity, as the rules use it.
type State int

// States. The zero value is StateOpen.
const (
	StateOpen State = iota
	StateCompleted
	StateCanceled
	StateScheduled
)

func (s State) String() string {
	switch s {
	case StateOpen:
		return "open"
	case StateCompleted:
		return "completed"
	case StateCanceled:
		return "canceled"
	case StateScheduled:
		return "scheduled"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// StateOf maps an activity statecode to a State: 0 open, 1 completed,
// 2 canceled, 3 scheduled (appointments), as in crm.Builtin().
func StateOf(statecode int64) (State, bool) {
	if statecode < 0 || statecode > 3 {
		return 0, false
	}
	return State(statecode), true
}

// Facts are what the rules look at. For a deletion in CRM the record is
// gone: the caller gives the facts as of the last sync (owner at last
// sync, snapshot state and start).
type Facts struct {
	UserIsOwner     bool
	UserIsOrganizer bool
	State           State
	// StartInFuture: the appointment's scheduledstart is after now.
	StartInFuture bool
	// TrackedFromPIM: the pair was created by tracking the PIM item.
	TrackedFromPIM bool
	// UntrackDeletesInCRM is the setting sync.untrack_deletes_in_crm.
	UntrackDeletesInCRM bool
}

// Action is what to do about a removal.
type Action int

// Actions.
const (
	Keep               Action = iota + 1 // leave both sides and the mapping as they are
	DeleteInCRM                          // delete the CRM record, then the mapping
	DeleteOnPIM                          // delete the PIM object, then the mapping
	Unlink                               // keep what is left on both sides, stop syncing the pair
	MarkDeletedLocally                   // keep the CRM record, never push it to the PIM side again
)

func (a Action) String() string {
	switch a {
	case Keep:
		return "keep"
	case DeleteInCRM:
		return "delete-in-crm"
	case DeleteOnPIM:
		return "delete-on-pim"
	case Unlink:
		return "unlink"
	case MarkDeletedLocally:
		return "mark-deleted-locally"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Cond is one condition of a deletion rule.
type Cond int

// Conditions.
const (
	IfOwner Cond = iota + 1
	IfNotOwner
	IfOwnerOrOrganizer
	IfOpenOrScheduled
	IfNotCompleted
	IfStartInFuture
	IfTrackedFromPIM
	IfUntrackSetting
)

func (c Cond) holds(f Facts) bool {
	switch c {
	case IfOwner:
		return f.UserIsOwner
	case IfNotOwner:
		return !f.UserIsOwner
	case IfOwnerOrOrganizer:
		return f.UserIsOwner || f.UserIsOrganizer
	case IfOpenOrScheduled:
		return f.State == StateOpen || f.State == StateScheduled
	case IfNotCompleted:
		return f.State != StateCompleted
	case IfStartInFuture:
		return f.StartInFuture
	case IfTrackedFromPIM:
		return f.TrackedFromPIM
	case IfUntrackSetting:
		return f.UntrackDeletesInCRM
	}
	return false
}

func (c Cond) String() string {
	return [...]string{"?", "owner", "not-owner", "owner-or-organizer", "open-or-scheduled", "not-completed",
		"start-in-future", "tracked-from-pim", "untrack-setting"}[min(max(int(c), 0), 8)]
}

// Rule is one row of the deletion table: for Kind and Event, when every
// condition in When holds, do Action. Rules are tried in table order;
// the last rule of each (Kind, Event) has no conditions.
type Rule struct {
	Kind   Kind
	Event  Event
	When   []Cond
	Action Action
	Why    string // the seed's wording
}

// Name is a stable identifier of the rule, e.g.
// "appointment/deleted-on-pim/open-or-scheduled+start-in-future+owner-or-organizer".
func (r Rule) Name() string {
	conds := make([]string, len(r.When))
	for i, c := range r.When {
		conds[i] = c.String()
	}
	w := strings.Join(conds, "+")
	if w == "" {
		w = "otherwise"
	}
	return r.Kind.String() + "/" + r.Event.String() + "/" + w
}

// DeletionRules is the deletion table (docs/sync-rules.md, Deletions, and
// Left the filter for reassignment) as data.
//
// Where the seed is silent the table decides: an untracked task follows
// the task delete rule only when untrack_deletes_in_crm is set, and is
// otherwise unlinked; a deleted e-mail is unlinked (nothing flows CRM ->
// PIM for e-mail); a canceled task counts as "not completed"; a record
// that left the filter is handled like a CRM deletion unless it was
// tracked from the PIM side, which stays there, unlinked (it is no longer
// the user's to sync), and an e-mail leaving the filter is kept. Only a
// deletion the sync protocol reports (a tombstone) is CRMDeleted; a record
// that left the user's filter or that the user can no longer read is
// LeftFilter.
var DeletionRules = []Rule{
	{KindContact, PIMDeleted, nil, MarkDeletedLocally, "a contact deleted on the PIM side is not deleted in CRM and not pushed again"},
	{KindContact, PIMUntracked, []Cond{IfUntrackSetting}, DeleteInCRM, "an untracked contact is deleted in CRM if the user chose so"},
	{KindContact, PIMUntracked, nil, Unlink, "an untracked contact stays in CRM"},
	{KindContact, CRMDeleted, []Cond{IfNotOwner}, DeleteOnPIM, "a contact deleted in CRM is deleted on the PIM side if the user is not its owner"},
	{KindContact, CRMDeleted, nil, Unlink, "a contact deleted in CRM that the user owned is kept on the PIM side, unlinked"},
	{KindContact, LeftFilter, []Cond{IfTrackedFromPIM}, Unlink, "a contact tracked from the PIM side stays there, unlinked, when it leaves the filter"},
	{KindContact, LeftFilter, []Cond{IfNotOwner}, DeleteOnPIM, "a contact reassigned to another owner leaves the PIM side"},
	{KindContact, LeftFilter, nil, Unlink, "a contact that left the filter but is still the user's is kept, unlinked"},

	{KindAppointment, PIMDeleted, []Cond{IfOpenOrScheduled, IfStartInFuture, IfOwnerOrOrganizer}, DeleteInCRM,
		"an appointment deleted on the PIM side is deleted in CRM if open/scheduled, in the future and the user is owner or organizer"},
	{KindAppointment, PIMDeleted, nil, Unlink, "otherwise the CRM appointment stays, unlinked"},
	{KindAppointment, PIMUntracked, []Cond{IfOpenOrScheduled, IfStartInFuture, IfOwnerOrOrganizer}, DeleteInCRM,
		"an appointment untracked on the PIM side is deleted in CRM if open/scheduled, in the future and the user is owner or organizer"},
	{KindAppointment, PIMUntracked, nil, Unlink, "otherwise the CRM appointment stays, unlinked"},
	{KindAppointment, CRMDeleted, []Cond{IfStartInFuture}, DeleteOnPIM, "an appointment deleted in CRM is deleted on the PIM side if it starts in the future"},
	{KindAppointment, CRMDeleted, nil, Unlink, "a past appointment deleted in CRM is kept on the PIM side, unlinked"},
	{KindAppointment, LeftFilter, []Cond{IfTrackedFromPIM}, Unlink, "an appointment tracked from the PIM side stays there, unlinked, when it leaves the filter"},
	{KindAppointment, LeftFilter, []Cond{IfStartInFuture}, DeleteOnPIM, "a future appointment that left the filter leaves the PIM side"},
	{KindAppointment, LeftFilter, nil, Unlink, "a past appointment that left the filter is kept, unlinked"},

	{KindTask, PIMDeleted, []Cond{IfNotCompleted}, DeleteInCRM, "a task deleted on the PIM side is deleted in CRM if not completed"},
	{KindTask, PIMDeleted, nil, Unlink, "a completed task stays in CRM, unlinked"},
	{KindTask, PIMUntracked, []Cond{IfUntrackSetting, IfNotCompleted}, DeleteInCRM, "an untracked open task is deleted in CRM if the user chose so"},
	{KindTask, PIMUntracked, nil, Unlink, "an untracked task stays in CRM, unlinked"},
	{KindTask, CRMDeleted, []Cond{IfNotCompleted}, DeleteOnPIM, "a task deleted in CRM is deleted on the PIM side if not completed"},
	{KindTask, CRMDeleted, nil, Unlink, "a completed task deleted in CRM is kept on the PIM side, unlinked"},
	{KindTask, LeftFilter, []Cond{IfTrackedFromPIM}, Unlink, "a task tracked from the PIM side stays there, unlinked, when it leaves the filter"},
	{KindTask, LeftFilter, []Cond{IfNotCompleted}, DeleteOnPIM, "an open task that left the filter leaves the PIM side"},
	{KindTask, LeftFilter, nil, Unlink, "a completed task that left the filter is kept, unlinked"},

	{KindEmail, PIMDeleted, nil, Unlink, "an e-mail deleted on the PIM side is not deleted in CRM"},
	{KindEmail, PIMUntracked, []Cond{IfUntrackSetting}, DeleteInCRM, "an untracked e-mail is deleted in CRM if the user chose so"},
	{KindEmail, PIMUntracked, nil, Unlink, "an untracked e-mail stays in CRM"},
	{KindEmail, CRMDeleted, nil, Unlink, "an e-mail deleted in CRM is never deleted on the PIM side"},
	{KindEmail, LeftFilter, nil, Keep, "an e-mail is never removed from the PIM side"},
}

// Decision is the outcome of Decide, with the rule that gave it.
type Decision struct {
	Action Action
	Rule   Rule
}

// Decide applies DeletionRules to a removal. It returns false only for a
// Kind or Event outside the table.
func Decide(kind Kind, ev Event, f Facts) (Decision, bool) {
rules:
	for _, r := range DeletionRules {
		if r.Kind != kind || r.Event != ev {
			continue
		}
		for _, c := range r.When {
			if !c.holds(f) {
				continue rules
			}
		}
		return Decision{Action: r.Action, Rule: r}, true
	}
	return Decision{}, false
}

// SparingEdit adjusts a deletion decision for a pair whose other side was
// edited since the last sync (the change matrix's delete-vs-edit
// conflicts): an action that would destroy that edit (DeleteInCRM after a
// CRM edit, DeleteOnPIM after a PIM edit) becomes Unlink, so nothing the
// user typed is lost; every other action stands.
func SparingEdit(a Action, editedSide Side) Action {
	if a == DeleteInCRM && editedSide == SideCRM || a == DeleteOnPIM && editedSide == SidePIM {
		return Unlink
	}
	return a
}
