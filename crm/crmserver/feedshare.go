package crmserver

import (
	"context"

	"github.com/pimbridge/pimbridge/crm"
)

// SharedFeed is an optional ability of a Store that several server
// processes share (crmstore on PostgreSQL): the change feed of each
// process also hears the writes committed through the others. WithFeed
// finds it by type assertion.
type SharedFeed interface {
	// AnnounceTx passes the writes of a transaction to the other
	// processes. It runs inside tx (from Update), so that they hear of the
	// writes only if tx commits.
	AnnounceTx(ctx context.Context, tx Tx, evs []FeedEvent) error
	// HearCommits registers fn, which the store calls with the writes
	// other processes committed, until it is closed.
	HearCommits(fn func([]FeedEvent))
}

// FeedEvent is one committed write as the change feed sees it: the
// entity and the record's owners before and after (zero when none).
// AnyOwner marks a write whose owners are unknown (the store lost track):
// every waiter of the entity wakes.
type FeedEvent struct {
	Entity   string
	Owners   [2]crm.ID
	AnyOwner bool
}

func toFeedEvents(evs []feedEvent) []FeedEvent {
	out := make([]FeedEvent, len(evs))
	for i, e := range evs {
		out[i] = FeedEvent{Entity: e.entity, Owners: e.owners, AnyOwner: e.anyOwner}
	}
	return out
}

func fromFeedEvents(evs []FeedEvent) []feedEvent {
	out := make([]feedEvent, len(evs))
	for i, e := range evs {
		out[i] = feedEvent{entity: e.Entity, owners: e.Owners, anyOwner: e.AnyOwner}
	}
	return out
}
