package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/pim/davext"
	"github.com/pimbridge/pimbridge/reconcile"
)

// Errors of the bridge. Compare with errors.Is.
var (
	// ErrNoPrivilege: the CRM user lacks the Sync to Outlook privilege.
	ErrNoPrivilege = errors.New("bridge: the CRM user lacks the Sync to Outlook privilege; ask an admin to grant it")
	// ErrNotPrimary: this bridge lost the primary role to another client
	// during the cycle (a stale fencing generation was refused).
	ErrNotPrimary = errors.New("bridge: this bridge is no longer the primary (synchronizing) client; run set-primary to take it back")
	// ErrItemErrors: the cycle finished but some items failed; they are
	// listed as sync errors.
	ErrItemErrors = errors.New("bridge: some items failed to sync")
)

// FatalError stops a cycle: bad credentials, a missing privilege, a lost
// primary role. Retrying without a change by the user does not help.
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

// Settings are the user's sync settings (config [sync]).
type Settings struct {
	// ToPIM lists the entities sent PIM-ward (unchecked types may still be
	// promoted from the PIM side). Nil means all of them.
	ToPIM map[string]bool
	// UpdateCompany writes the parent account's name into ORG, one way.
	UpdateCompany bool
	// UntrackDeletesInCRM is sync.untrack_deletes_in_crm.
	UntrackDeletesInCRM bool
	// TrackByCategory tracks PIM items by Category instead of by being in
	// the collection.
	TrackByCategory bool
	// Category is the tracking category; "" means "CRM".
	Category string
	// MassDeleteThreshold is the largest share of a collection a cycle may
	// delete without confirmation; 0 means 0.5.
	MassDeleteThreshold float64
	// VerifyPerCycle is how many mappings the verification job checks per
	// collection after each full cycle; 0 means reconcile.DefaultVerifyBatch,
	// negative disables the job.
	VerifyPerCycle int
	// AllowDuplicates is sync.duplicates = "allow" (the user's personal
	// option): items new on the PIM side are created in CRM even when
	// duplicate detection finds matches. False ("ask") makes such an item
	// a sync error the user resolves (errors retry --allow-duplicate,
	// errors link).
	AllowDuplicates bool
}

func (s Settings) sendsToPIM(entity string) bool {
	if s.ToPIM == nil {
		return true
	}
	return s.ToPIM[entity]
}

func (s Settings) category() string {
	if s.Category == "" {
		return "CRM"
	}
	return s.Category
}

// Options configure a Bridge.
type Options struct {
	// CRM is the CRM client of the user, without a fencing generation.
	// Required.
	CRM CRM
	// Fenced returns the CRM client that sends fencing generation gen
	// (crmclient.Client.WithGeneration). Nil means CRM is used as is.
	Fenced func(gen int64) CRM
	// ClientID is the stable id of this bridge (config client.id).
	// Required.
	ClientID string
	// Cache is the client cache. Required.
	Cache *idmap.Store
	// Contacts, Tasks and Calendar are the PIM collections; a nil one does
	// not sync (contacts; tasks, phone calls, letters, faxes; appointments).
	// Tasks and Calendar may be the same collection (same Href): it then
	// holds both, each item sorted by its component.
	Contacts, Tasks, Calendar Collection
	// Directory is the address book that receives the CRM accounts and
	// users one way (SyncDirectory); nil means none.
	Directory Collection
	// Settings are the user's sync settings.
	Settings Settings
	// Retry says when a failed item is tried again. Zero values take
	// idmap.RetryPolicy's defaults.
	Retry idmap.RetryPolicy
	// BatchSize is the CRM batch size; 0 means the server's default.
	BatchSize int
	// Logger receives progress and problems. Nil means slog.Default().
	Logger *slog.Logger
	// Progress, when set, is called while pairs are applied with the
	// number done and the number due (the progress of a first sync).
	Progress func(done, total int)
	// CollectionProgress, when set, is called the same way per collection
	// (a progress bar each); see CollectionProgress.
	CollectionProgress func(CollectionProgress)
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Bridge syncs one user's CRM data with their PIM collections. Cycle and
// Poll may be called from several goroutines; they run one at a time.
type Bridge struct {
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	lanes []*lane
	mu    sync.Mutex // one cycle at a time
	// liveRemoved counts per collection the removals light passes let
	// through since the last full cycle (liveGuard); under mu.
	liveRemoved map[string]int
	// live is the change feed's queue while Run holds the feed open.
	live  atomic.Pointer[liveQueue]
	dirMu sync.Mutex // one directory pass at a time

	trigMu  sync.Mutex
	trigger chan struct{}
}

// New returns a bridge.
func New(opts Options) (*Bridge, error) {
	if opts.CRM == nil || opts.Cache == nil || opts.ClientID == "" {
		return nil, fmt.Errorf("bridge: new: CRM, Cache and ClientID are required")
	}
	b := &Bridge{opts: opts, log: opts.Logger, now: opts.Now}
	if b.log == nil {
		b.log = slog.Default()
	}
	if b.now == nil {
		b.now = time.Now
	}
	if opts.Contacts != nil {
		b.lanes = append(b.lanes, &lane{name: "contacts", col: opts.Contacts, entities: []string{crm.EntityContact}, ext: ".vcf", vcard: true})
	}
	tasks := []string{crm.EntityTask, crm.EntityPhoneCall, crm.EntityLetter, crm.EntityFax}
	switch {
	case opts.Tasks != nil && opts.Calendar != nil && davext.NormalizeHref(opts.Tasks.Href()) == davext.NormalizeHref(opts.Calendar.Href()):
		// One calendar takes events and tasks (Cyrus, Fastmail, Nextcloud
		// and Apple default calendars): one lane reads it once, and each
		// item sorts by its component (VEVENT, VTODO with X-CRM-ENTITY).
		b.lanes = append(b.lanes, &lane{name: "calendar", col: opts.Calendar, entities: append(tasks, crm.EntityAppointment), ext: ".ics"})
	default:
		if opts.Tasks != nil {
			b.lanes = append(b.lanes, &lane{name: "tasks", col: opts.Tasks, entities: tasks, ext: ".ics"})
		}
		if opts.Calendar != nil {
			b.lanes = append(b.lanes, &lane{name: "appointments", col: opts.Calendar, entities: []string{crm.EntityAppointment}, ext: ".ics"})
		}
	}
	return b, nil
}

// lane is one item type's pair of collections: a PIM collection and the CRM
// entities that live in it.
type lane struct {
	name     string
	col      Collection
	entities []string
	ext      string
	vcard    bool
}

func (l *lane) holds(entity string) bool {
	for _, e := range l.entities {
		if e == entity {
			return true
		}
	}
	return false
}

func (l *lane) contentType() string {
	if l.vcard {
		return "text/vcard"
	}
	return "text/calendar"
}

// CycleOptions tune one cycle.
type CycleOptions struct {
	// ConfirmDeletes lets a cycle delete more than the mass-deletion
	// threshold (the --confirm-deletes flag).
	ConfirmDeletes bool
	// Light is a watch pass between full cycles: PIM-side changes only,
	// track/update/untrack applied at once, deletions left for the next
	// full cycle, no verification job (reconcile.WhenApplied).
	Light bool
	// CRMEntities makes a light pass also pull the CRM changes of these
	// entities (the change feed named them, live.go). A deletion in CRM
	// (a tombstone) is then applied at once, by the deletion rules, while
	// the live passes' deletions since the last full cycle stay under the
	// mass-deletion guard (liveGuard); other removals wait for the full
	// cycle.
	CRMEntities []string
	// PIMCollections, when set, makes a light pass list only these PIM
	// collections (hrefs): the fast poll of collections that just changed.
	PIMCollections []string
}

// Counter counts writes of one kind on one side.
type Counter struct {
	Created int `json:"created"`
	Updated int `json:"updated"`
	Deleted int `json:"deleted"`
}

// Stats are the figures of one cycle, per side and kind.
type Stats struct {
	ToCRM     Counter       `json:"to_crm"`
	ToPIM     Counter       `json:"to_pim"`
	Linked    int           `json:"linked"`
	Unlinked  int           `json:"unlinked"`
	Unchanged int           `json:"unchanged"`
	Conflicts int           `json:"conflicts"`
	Retried   int           `json:"retried_412"`
	Failed    int           `json:"failed"`
	Malformed int           `json:"malformed"`
	Pending   int           `json:"pending"`
	Verified  int           `json:"verified"`
	Primary   bool          `json:"primary"`
	Duration  time.Duration `json:"duration_ns"`
	// Deferred counts removals a light pass left for the full cycle, or
	// that the mass-deletion guard held back.
	Deferred int `json:"deferred"`
	// ByEntity breaks the writes, unlinks and failures down by CRM entity
	// (contact, task, appointment, ...); its sums are the totals above.
	// UnknownEntity holds objects too malformed to name one.
	ByEntity map[string]*EntityStats `json:"by_entity,omitempty"`
	// Directory holds the figures of the directory pass that Run makes
	// after a full cycle when Options.Directory is set; nil otherwise.
	Directory *DirectoryStats `json:"directory,omitempty"`
}

// UnknownEntity is the ByEntity key of objects that name no entity.
const UnknownEntity = "unknown"

// EntityStats are one entity's share of a cycle's Stats.
type EntityStats struct {
	ToCRM    Counter `json:"to_crm"`
	ToPIM    Counter `json:"to_pim"`
	Unlinked int     `json:"unlinked"`
	Failed   int     `json:"failed"` // failed and malformed items
}

// of returns entity's share, creating it.
func (s *Stats) of(entity string) *EntityStats {
	if entity == "" {
		entity = UnknownEntity
	}
	if s.ByEntity == nil {
		s.ByEntity = map[string]*EntityStats{}
	}
	e := s.ByEntity[entity]
	if e == nil {
		e = &EntityStats{}
		s.ByEntity[entity] = e
	}
	return e
}

// The counting helpers keep a total and its entity's share together.
func (s *Stats) createdInCRM(entity string) { s.ToCRM.Created++; s.of(entity).ToCRM.Created++ }
func (s *Stats) updatedInCRM(entity string) { s.ToCRM.Updated++; s.of(entity).ToCRM.Updated++ }
func (s *Stats) deletedInCRM(entity string) { s.ToCRM.Deleted++; s.of(entity).ToCRM.Deleted++ }
func (s *Stats) createdOnPIM(entity string) { s.ToPIM.Created++; s.of(entity).ToPIM.Created++ }
func (s *Stats) updatedOnPIM(entity string) { s.ToPIM.Updated++; s.of(entity).ToPIM.Updated++ }
func (s *Stats) deletedOnPIM(entity string) { s.ToPIM.Deleted++; s.of(entity).ToPIM.Deleted++ }
func (s *Stats) unlinked(entity string)     { s.Unlinked++; s.of(entity).Unlinked++ }
func (s *Stats) failed(entity string)       { s.Failed++; s.of(entity).Failed++ }
func (s *Stats) malformed(entity string)    { s.Malformed++; s.of(entity).Failed++ }

func (c *Counter) add(o Counter) {
	c.Created += o.Created
	c.Updated += o.Updated
	c.Deleted += o.Deleted
}

func (s *Stats) add(o Stats) {
	s.ToCRM.add(o.ToCRM)
	s.ToPIM.add(o.ToPIM)
	s.Linked += o.Linked
	s.Unlinked += o.Unlinked
	s.Unchanged += o.Unchanged
	s.Conflicts += o.Conflicts
	s.Retried += o.Retried
	s.Failed += o.Failed
	s.Malformed += o.Malformed
	s.Verified += o.Verified
	s.Deferred += o.Deferred
	for name, e := range o.ByEntity {
		m := s.of(name)
		m.ToCRM.add(e.ToCRM)
		m.ToPIM.add(e.ToPIM)
		m.Unlinked += e.Unlinked
		m.Failed += e.Failed
	}
}

func (b *Bridge) guard(confirm bool) reconcile.Guard {
	return reconcile.Guard{Threshold: b.opts.Settings.MassDeleteThreshold, Confirmed: confirm}
}
