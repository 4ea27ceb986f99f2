package mailtrack

import (
	"context"
	"log/slog"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/pim/imapmail"
)

// CRM is the CRM server as the tracker drives it; *crmclient.Client
// implements it. Errors wrap the crm sentinels (crm.ErrNotFound for a
// missing record, crm.ErrConflict for an existing id with another body).
type CRM interface {
	Get(ctx context.Context, entity string, id crm.ID, sel ...string) (crm.Record, error)
	Create(ctx context.Context, r crm.Record, opts *crmclient.WriteOptions) (crm.Record, error)
	Update(ctx context.Context, r crm.Record, opts *crmclient.WriteOptions) (crm.Record, error)
	Delete(ctx context.Context, entity string, id crm.ID, opts *crmclient.WriteOptions) error
	QueryAll(ctx context.Context, entity string, q crmclient.Query) ([]crm.Record, error)
}

// Mailbox is the IMAP account as the tracker drives it; *imapmail.Client
// implements it (and reconnects by itself). A missing mailbox is
// imapmail.ErrNoMailbox.
type Mailbox interface {
	Changes(ctx context.Context, mailbox string, cur imapmail.Cursor) (*imapmail.ChangeSet, error)
	FetchMessage(ctx context.Context, mailbox string, uidValidity, uid uint32) ([]byte, error)
	SetKeyword(ctx context.Context, mailbox string, uidValidity uint32, uids []uint32, keyword string) error
	Mailboxes(ctx context.Context) ([]imapmail.Mailbox, error)
	Namespace(ctx context.Context) (imapmail.Namespace, error)
	Create(ctx context.Context, mailbox string) error
	Watch(ctx context.Context, mailboxes []string) (<-chan struct{}, error)
}

var _ Mailbox = (*imapmail.Client)(nil)

// Options configure a Tracker. CRM, Mailbox and Cache are required.
type Options struct {
	CRM     CRM
	Mailbox Mailbox
	// Cache is the client cache; the tracker owns the email mappings in it
	// (object type idmap.ObjectEmail) and the cursors of Account.
	Cache *idmap.Store
	// Account names the IMAP account in cursors and sync errors; "" means
	// "imap".
	Account string

	// Folders are the watched folders; nil means INBOX and the Sent folder.
	// Every folder path here and below is written with "/" and turned into
	// the server's delimiter and personal namespace (imapmail.Namespace.
	// Path: "CRM/Regarding" is "INBOX.CRM.Regarding" on Debian's Cyrus);
	// "Sent" and "Drafts" (or another usual name of them) mean the folder
	// with that special use (RFC 6154) when the server has one.
	Folders []string
	// SentFolder is the folder whose messages are outgoing; "" means the
	// \Sent special-use folder (else "Sent", "Sent Items"...).
	SentFolder string
	// DraftsFolder is never tracked; "" means the \Drafts special-use
	// folder (else "Drafts").
	DraftsFolder string
	// TrackKeyword is the keyword that marks a tracked message; "" means
	// "$CRMTracked". It is compared case-insensitively.
	TrackKeyword string
	// RegardingFolder is the root of the Regarding folders; "" means
	// "CRM/Regarding"; "-" disables Regarding folders. A folder the server
	// will not create is one sync error, not a failed cycle.
	RegardingFolder string
	// RegardingRefresh is how often the Regarding folders are matched
	// against the user's accounts and contacts (and missing ones created);
	// zero means 15 min. The first cycle always does it.
	RegardingRefresh time.Duration
	// TrackReplies tracks a message in Sent that replies (In-Reply-To,
	// References) to a tracked message.
	TrackReplies bool
	// UntrackDeletesInCRM deletes the CRM email of an untracked message;
	// false only unlinks it.
	UntrackDeletesInCRM bool
	// OwnAddresses are the user's addresses: a message from one of them
	// filed into a Regarding folder is outgoing. Nil: only Sent is outgoing.
	OwnAddresses []string
	// AttachmentSizeLimit caps attachment bodies carried into CRM (see
	// mapping.Options.MaxAttachmentSize): zero means 25 MiB, negative no
	// bodies.
	AttachmentSizeLimit int64
	// Retry says when a failed change is tried again; the zero value is
	// idmap's default (5 attempts, then a sync error).
	Retry idmap.RetryPolicy

	// Logger receives progress and item failures; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultKeyword is the track keyword unless Options.TrackKeyword says
// otherwise.
const DefaultKeyword = "$CRMTracked"

// DefaultRegardingFolder is the Regarding root unless Options say
// otherwise; like every folder path it is turned into the server's
// namespace.
const DefaultRegardingFolder = "CRM/Regarding"
