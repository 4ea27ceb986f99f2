package reconcile

import "fmt"

// UserAction is something the user did to a PIM item between cycles
// (the immediate-sync table; Outlook's Inspector and Explorer are the
// same here).
type UserAction int

// User actions.
const (
	ActTrack UserAction = iota + 1
	ActUpdate
	ActUntrack
	ActDelete
	ActSetRegarding
)

func (a UserAction) String() string {
	switch a {
	case ActTrack:
		return "track"
	case ActUpdate:
		return "update"
	case ActUntrack:
		return "untrack"
	case ActDelete:
		return "delete"
	case ActSetRegarding:
		return "set-regarding"
	}
	return fmt.Sprintf("UserAction(%d)", int(a))
}

// ItemClass is the column group of the immediate-sync table.
type ItemClass int

// Item classes.
const (
	ClassMail     ItemClass = iota + 1 // received or sent e-mail
	ClassDraft                         // draft e-mail
	ClassNonEmail                      // contact, task-like, appointment
)

// Timing says when a user action reaches the other side.
type Timing int

// Timings.
const (
	// AtNextCycle: the next full (scheduled or manual) cycle applies it.
	AtNextCycle Timing = iota + 1
	// Immediately: the watcher applies it at once (sync-token poll, IDLE).
	Immediately
	// OnSend: a draft is handled once it is sent (it then is ClassMail).
	OnSend
	// LeftToPrimary: a secondary bridge never applies it; the primary's
	// next cycle does.
	LeftToPrimary
	// NotApplicable: the action does not exist for the class.
	NotApplicable
)

func (t Timing) String() string {
	switch t {
	case AtNextCycle:
		return "next-cycle"
	case Immediately:
		return "immediately"
	case OnSend:
		return "on-send"
	case LeftToPrimary:
		return "left-to-primary"
	case NotApplicable:
		return "n/a"
	}
	return fmt.Sprintf("Timing(%d)", int(t))
}

type immKey struct {
	act     UserAction
	class   ItemClass
	primary bool
}

// immediateTable is the immediate-sync table. Deletions always wait for the
// next cycle; a secondary client leaves every non-e-mail change to the
// primary; drafts are tracked when sent and never stored as drafts.
var immediateTable = map[immKey]Timing{
	{ActTrack, ClassMail, true}: Immediately, {ActTrack, ClassMail, false}: Immediately,
	{ActUpdate, ClassMail, true}: Immediately, {ActUpdate, ClassMail, false}: Immediately,
	{ActUntrack, ClassMail, true}: Immediately, {ActUntrack, ClassMail, false}: Immediately,
	{ActDelete, ClassMail, true}: AtNextCycle, {ActDelete, ClassMail, false}: AtNextCycle,
	{ActSetRegarding, ClassMail, true}: Immediately, {ActSetRegarding, ClassMail, false}: Immediately,

	{ActTrack, ClassDraft, true}: OnSend, {ActTrack, ClassDraft, false}: OnSend,
	{ActUpdate, ClassDraft, true}: OnSend, {ActUpdate, ClassDraft, false}: OnSend,
	{ActUntrack, ClassDraft, true}: NotApplicable, {ActUntrack, ClassDraft, false}: NotApplicable,
	{ActDelete, ClassDraft, true}: NotApplicable, {ActDelete, ClassDraft, false}: NotApplicable,
	{ActSetRegarding, ClassDraft, true}: NotApplicable, {ActSetRegarding, ClassDraft, false}: NotApplicable,

	{ActTrack, ClassNonEmail, true}: Immediately, {ActTrack, ClassNonEmail, false}: LeftToPrimary,
	{ActUpdate, ClassNonEmail, true}: Immediately, {ActUpdate, ClassNonEmail, false}: LeftToPrimary,
	{ActUntrack, ClassNonEmail, true}: Immediately, {ActUntrack, ClassNonEmail, false}: LeftToPrimary,
	{ActDelete, ClassNonEmail, true}: AtNextCycle, {ActDelete, ClassNonEmail, false}: LeftToPrimary,
	{ActSetRegarding, ClassNonEmail, true}: Immediately, {ActSetRegarding, ClassNonEmail, false}: LeftToPrimary,
}

// WhenApplied returns when a user action on an item of class reaches the
// other side, on a primary or a secondary bridge.
func WhenApplied(act UserAction, class ItemClass, primary bool) Timing {
	if t, ok := immediateTable[immKey{act, class, primary}]; ok {
		return t
	}
	return NotApplicable
}
