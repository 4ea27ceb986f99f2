package ui

import (
	"context"
	"errors"
	"time"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/offline"
)

// ErrNotRunning: the daemon is between two wirings (it rewires when the
// client goes offline or online) or stopping; try again in a moment.
var ErrNotRunning = errors.New("ui: the daemon is restarting its sync; try again in a few seconds")

// Backend is the daemon as the page drives it. Every method may be called
// from several requests at once and returns ErrNotRunning while the daemon
// rewires.
type Backend interface {
	// Status describes the daemon and the client.
	Status(ctx context.Context) (Status, error)
	// SyncNow runs a full cycle now (`pimbridge sync` through the daemon).
	SyncNow(ctx context.Context) error
	// SyncErrors lists the items that failed to sync (`errors list`).
	SyncErrors(ctx context.Context) ([]idmap.SyncError, error)
	// RetryError, DiscardError, AllowDuplicate and LinkError are `errors
	// retry ID`, `errors discard ID`, `errors retry ID --allow-duplicate`
	// and `errors link ID CRM-ID`; idmap.ErrNoSyncError for an unknown id.
	RetryError(ctx context.Context, id int64) error
	DiscardError(ctx context.Context, id int64) error
	AllowDuplicate(ctx context.Context, id int64) error
	LinkError(ctx context.Context, id int64, crmID crm.ID) error
	// Search finds CRM records of sync error id's entity matching q, for
	// linking to them.
	Search(ctx context.Context, id int64, q string) ([]Match, error)
	// Plan is a dry run of the next cycle (`pimbridge plan`), with the
	// items of any mass deletion the guard holds back.
	Plan(ctx context.Context) (Plan, error)
	// ConfirmDeletes runs a full cycle that applies held-back deletions
	// (`sync --confirm-deletes`).
	ConfirmDeletes(ctx context.Context) (bridge.Stats, error)
	// GoOffline fills the replica and goes offline (`go-offline`),
	// calling progress after every batch.
	GoOffline(ctx context.Context, progress func(offline.Progress)) (offline.Report, error)
	// GoOnline replays the offline queue (`go-online --on-error=...`);
	// QueueLength may be read meanwhile for its progress.
	GoOnline(ctx context.Context, onError offline.OnError) (offline.ReplayReport, error)
	// QueueLength is the offline queue's length (0 with no replica).
	QueueLength(ctx context.Context) (int64, error)
	// OfflineErrors lists the writes the server rejected on replay.
	OfflineErrors(ctx context.Context) ([]offline.Rejection, error)
}

// Status is what the status page shows.
type Status struct {
	ClientID string
	// State is the client state (offline.ClientState's name; "Online"
	// for a client that never went offline).
	State   string
	Offline bool
	// Primary is known after the first full cycle.
	Primary   bool
	Cycles    int
	Started   time.Time
	LastCycle time.Time // zero before the first full cycle
	NextCycle time.Time // zero when unknown
	// LastError is the last full cycle's error ("" when it succeeded).
	LastError string
	// Last holds the last full cycle's figures; nil before the first.
	Last          *bridge.Stats
	QueueLength   int64
	SyncErrors    int
	OfflineErrors int
	Email         bool
}

// Match is a CRM record found for linking.
type Match struct {
	ID    crm.ID
	Label string // e.g. "Eve Existing <eve@example.com>"
}

// Plan is a dry run of the next cycle.
type Plan struct {
	Writes []bridge.PlannedWrite
	Stats  bridge.Stats
	// Held are the mass deletions the guard would hold back, with their
	// items; empty when none.
	Held []Held
	// Err is the dry run's error other than the guard's ("" when none).
	Err string
}

// Held is one collection's held-back mass deletion.
type Held struct {
	Collection string
	Deletes    int
	Total      int
	Threshold  float64
	Items      []bridge.PlannedWrite
}
