package crm

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The wire types of the CRM HTTP API that crm/crmserver serves and
// crm/crmclient speaks: the sync API (subscriptions, prepare, postsync,
// sync info, local filters, the primary client, the change feed), the
// OData $batch parts, the request headers, duplicate detection's answer and
// the custom-entity request. They live here so that the client does not
// import the server (as go-imap keeps what imapclient and imapserver share
// in package imap).

// Subscription kinds.
const (
	KindOffline     = "offline"
	KindOutlook     = "outlook"
	KindAddressBook = "addressbook"
)

// Subscription is one client instance's view of the data for one purpose.
type Subscription struct {
	ID          string    `json:"id"`
	UserID      ID        `json:"userid"`
	ClientID    string    `json:"clientid"`
	Kind        string    `json:"kind"`
	Cursor      int64     `json:"cursor"` // highest version merged by prepare
	CreatedOn   time.Time `json:"createdon"`
	LastPrepare time.Time `json:"lastprepare,omitzero"`
}

// PrepareCount is the per-entity answer of prepare.
type PrepareCount struct {
	Entity      string `json:"name"`
	InsertCount int64  `json:"insert_count"`
	DeleteCount int64  `json:"delete_count"`
}

// PostSyncResult reports what an acknowledgement did.
type PostSyncResult struct {
	BatchID  uint64 `json:"batch"`
	Synced   int64  `json:"synced"`   // rows 1 -> 0
	Removed  int64  `json:"removed"`  // rows in state 2 removed
	Resend   int64  `json:"resend"`   // rows changed after the cut, still 1
	Already  bool   `json:"already"`  // the batch was acknowledged before
	Entity   string `json:"entity"`   // entity of the batch
	RowCount int64  `json:"rowcount"` // rows in the batch
}

// SyncInfo is the RecordSyncInfo statistics of one run.
type SyncInfo struct {
	RunID      string          `json:"runid"`
	Started    time.Time       `json:"started"`
	Finished   time.Time       `json:"finished"`
	Entities   []SyncInfoCount `json:"entities"`
	Bytes      int64           `json:"bytes"`
	Batches    int             `json:"batches"`
	Error      string          `json:"error,omitempty"`
	RecordedOn time.Time       `json:"recordedon"`
}

// SyncInfoCount is one entity's figures of a run.
type SyncInfoCount struct {
	Entity     string `json:"name"`
	Inserted   int64  `json:"inserted"`
	Deleted    int64  `json:"deleted"`
	DurationMS int64  `json:"duration_ms"`
}

// LocalFilter is a local data filter: an OData $filter (with @me, @now-Nd
// and isparty(@me)) for one entity. A locked default cannot be replaced
// by a user filter.
type LocalFilter struct {
	Entity string `json:"entity"`
	Filter string `json:"filter"`
	Locked bool   `json:"locked,omitempty"`
	User   ID     `json:"userid"` // zero for a default
}

// Primary is the user's synchronizing client and its fencing generation.
type Primary struct {
	ClientID   string    `json:"clientid"`
	Generation int64     `json:"generation"`
	ClaimedOn  time.Time `json:"claimedon,omitzero"`
}

// FeedAnswer is the body of a change-feed answer.
type FeedAnswer struct {
	Cursor   string   `json:"cursor"`
	Changed  bool     `json:"changed"`
	Entities []string `json:"entities"`
	Reset    bool     `json:"reset,omitempty"`
}

// BatchRequest is one part of an OData JSON batch.
type BatchRequest struct {
	ID             string            `json:"id"`
	Method         string            `json:"method"`
	URL            string            `json:"url"`
	Headers        map[string]string `json:"headers,omitempty"`
	Body           json.RawMessage   `json:"body,omitempty"`
	AtomicityGroup string            `json:"atomicityGroup,omitempty"`
	DependsOn      []string          `json:"dependsOn,omitempty"`
}

// BatchResponse is one part of the answer.
type BatchResponse struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// Header names.
const (
	HeaderSuppressDuplicates = "MSCRM.SuppressDuplicateDetection"
	HeaderCallerOrigin       = "MSCRM.CallerOrigin"
	HeaderPrimaryGeneration  = "Pimbridge-Primary-Generation"
	HeaderBatchID            = "Pimbridge-Batch-Id"
)

// Duplicate names a record found by duplicate detection.
type Duplicate struct {
	Entity string `json:"entity"`
	ID     ID     `json:"id"`
	Name   string `json:"name,omitempty"`
}

// CallerOrigin tells where a request came from: "Online" for a live
// client, "Offline" for one replayed from an offline queue, with the time
// it was queued. It is read from the MSCRM.CallerOrigin header:
//
//	MSCRM.CallerOrigin: Offline; queued=2024-05-01T09:30:00Z
type CallerOrigin struct {
	Kind     string    // "Online" or "Offline"
	QueuedAt time.Time // zero when not given
}

// String formats the origin as the header value.
func (o CallerOrigin) String() string {
	if o.QueuedAt.IsZero() {
		return o.Kind
	}
	return o.Kind + "; queued=" + o.QueuedAt.UTC().Format(time.RFC3339)
}

// ParseCallerOrigin parses the header value; empty means Online.
func ParseCallerOrigin(v string) (CallerOrigin, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return CallerOrigin{Kind: "Online"}, nil
	}
	parts := strings.Split(v, ";")
	o := CallerOrigin{Kind: strings.TrimSpace(parts[0])}
	switch strings.ToLower(o.Kind) {
	case "online":
		o.Kind = "Online"
	case "offline":
		o.Kind = "Offline"
	default:
		return o, fmt.Errorf("%w: %s: kind %q (want Online or Offline)", ErrInvalidArgument, HeaderCallerOrigin, o.Kind)
	}
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(k, "queued") {
			return o, fmt.Errorf("%w: %s: bad parameter %q", ErrInvalidArgument, HeaderCallerOrigin, p)
		}
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(val))
		if err != nil {
			return o, fmt.Errorf("%w: %s: bad queued time %q", ErrInvalidArgument, HeaderCallerOrigin, val)
		}
		o.QueuedAt = t.UTC()
	}
	return o, nil
}

// EntityRequest is the body of POST /api/metadata/entities: a user-owned
// custom entity. The primary key is <logicalname>id.
type EntityRequest struct {
	Name        string `json:"logicalname"`          // with a publisher prefix: new_project
	SetName     string `json:"entitysetname"`        // used in URLs: new_projects
	PrimaryName string `json:"primarynameattribute"` // a string attribute, required on create
	MaxLength   int    `json:"maxlength,omitempty"`  // of the primary name; 0 means 100
}
