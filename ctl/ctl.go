package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/bridge/mailtrack"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
)

// Version is the handshake line (without its newline) the server sends
// first. A change to the messages that an older peer would misread bumps it.
const Version = "pimbridge-ctl v1"

// SocketName is the socket's file name in the client state directory.
const SocketName = "ctl.sock"

// Errors of the control protocol. Compare with errors.Is.
var (
	// ErrNoDaemon: nothing listens on the socket (no file, or a stale one
	// left by a killed daemon). The CLI then works on its own.
	ErrNoDaemon = errors.New("ctl: no daemon is running")
	// ErrDaemonRunning: Listen found another live daemon on the socket.
	ErrDaemonRunning = errors.New("ctl: another daemon is already running on this state directory")
	// ErrVersion: the peer speaks another protocol version (see
	// VersionError).
	ErrVersion = errors.New("ctl: protocol version mismatch")
	// ErrProtocol: the peer sent something that is not the protocol.
	ErrProtocol = errors.New("ctl: protocol error")
	// ErrPathTooLong: the socket path does not fit a unix socket address
	// (maxPath bytes); no daemon can listen there.
	ErrPathTooLong = errors.New("ctl: socket path too long for a unix socket (shorten client.state_dir)")
)

// maxPath is the longest socket path every unix accepts (sun_path is 104
// bytes on the BSDs and macOS, 108 on Linux, both with the final NUL).
const maxPath = 103

// VersionError is a handshake line other than Version.
type VersionError struct {
	Got, Want string
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("ctl: the daemon speaks %q, this binary %q: restart the daemon with this binary", e.Got, e.Want)
}

func (e *VersionError) Unwrap() error { return ErrVersion }

// Daemon is what the control server serves; `pimbridge daemon` implements
// it. Every method is called from the connection's goroutine with a ctx
// that ends when the client hangs up or the server stops; methods may be
// called concurrently for different connections.
type Daemon interface {
	// SyncNow runs a full bridge cycle that starts after the call (and an
	// e-mail cycle when e-mail is tracked) and returns its figures. The
	// cycle's own failure is SyncResult.Err or EmailErr; the error return
	// is for a cycle that could not be waited for (ctx ended, the daemon
	// is stopping).
	SyncNow(ctx context.Context, opts SyncOptions) (SyncResult, error)
	// Status describes the running daemon.
	Status(ctx context.Context) (Status, error)
	// RetryError asks for another attempt of sync error id at the next
	// cycle; idmap.ErrNoSyncError when there is no such error.
	RetryError(ctx context.Context, id int64) error
	// DiscardError drops sync error id and its parked change;
	// idmap.ErrNoSyncError when there is no such error.
	DiscardError(ctx context.Context, id int64) error
	// AllowDuplicate resolves sync error id by creating its item in CRM
	// at the next cycle although duplicate detection finds matches;
	// idmap.ErrNoSyncError when there is no such error.
	AllowDuplicate(ctx context.Context, id int64) error
	// LinkError resolves sync error id by linking its item to the
	// existing CRM record crmID, merged at the next cycle;
	// bridge.ErrNoRecord, idmap.ErrAlreadySynced, idmap.ErrDuplicate.
	LinkError(ctx context.Context, id int64, crmID crm.ID) error
}

// SyncOptions tune a SyncNow.
type SyncOptions struct {
	// ConfirmDeletes lets this cycle delete beyond the mass-deletion
	// threshold (the --confirm-deletes flag).
	ConfirmDeletes bool `json:"confirm_deletes,omitempty"`
}

// SyncResult is the outcome of the cycle a SyncNow ran.
type SyncResult struct {
	// Stats are the bridge cycle's figures.
	Stats bridge.Stats `json:"stats"`
	// Email holds the e-mail cycle's figures; nil when e-mail is not
	// tracked.
	Email *mailtrack.Stats `json:"email,omitempty"`
	// Err is the bridge cycle's error (errors.Is bridge.ErrItemErrors
	// survives the socket); nil when it succeeded.
	Err error `json:"-"`
	// EmailErr is the e-mail cycle's error; nil when it succeeded.
	EmailErr error `json:"-"`
}

// Status describes a running daemon.
type Status struct {
	PID      int       `json:"pid"`
	ClientID string    `json:"client_id"`
	Started  time.Time `json:"started"`
	// Offline is true while the bridge works against the offline replica.
	Offline bool `json:"offline"`
	// Email is true when e-mail is tracked.
	Email bool `json:"email"`
	// Cycles counts full cycles since the start; LastCycle is when the last
	// one ended and LastError its error ("" when it succeeded).
	Cycles    int       `json:"cycles"`
	LastCycle time.Time `json:"last_cycle,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// RemoteError is an error the daemon returned, as the client sees it:
// the daemon's message, and the sentinel its kind names, so that
// errors.Is works across the socket.
type RemoteError struct {
	Message string
	Kind    string // one of the kinds below; "" for any other error
}

func (e *RemoteError) Error() string { return e.Message }

// Unwrap returns the sentinel of the error's kind, or nil.
func (e *RemoteError) Unwrap() error {
	for _, k := range kinds {
		if k.name == e.Kind {
			return k.err
		}
	}
	return nil
}

// kinds are the sentinels that keep their identity across the socket.
var kinds = []struct {
	name string
	err  error
}{
	{"item_errors", bridge.ErrItemErrors},
	{"no_sync_error", idmap.ErrNoSyncError},
	{"no_record", bridge.ErrNoRecord},
	{"already_synced", idmap.ErrAlreadySynced},
	{"already_mapped", idmap.ErrDuplicate},
	{"not_primary", bridge.ErrNotPrimary},
	{"no_privilege", bridge.ErrNoPrivilege},
	{"canceled", context.Canceled},
	{"deadline", context.DeadlineExceeded},
}

// wireError is an error on the wire.
type wireError struct {
	Message string `json:"message"`
	Kind    string `json:"kind,omitempty"`
}

func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	w := &wireError{Message: err.Error()}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			w.Kind = k.name
			break
		}
	}
	return w
}

func fromWire(w *wireError) error {
	if w == nil {
		return nil
	}
	return &RemoteError{Message: w.Message, Kind: w.Kind}
}

// Operations.
const (
	opSync    = "sync"
	opStatus  = "status"
	opRetry   = "retry"
	opDiscard = "discard"
	// opAllowDuplicate and opLink resolve a duplicate; a daemon that
	// predates them answers "unknown op".
	opAllowDuplicate = "allow_duplicate"
	opLink           = "link"
	// opLogLevel sets or reads the daemon's log level; served when the
	// Daemon is a LogLeveler.
	opLogLevel = "log_level"
)

// LogLeveler is a Daemon whose log level can change at run time.
type LogLeveler interface {
	// SetLogLevel sets the level by name (error, warn, info, debug,
	// trace; "" leaves it) and returns the level now in force.
	SetLogLevel(ctx context.Context, level string) (string, error)
}

// LogLevel is the answer of SetLogLevel.
type LogLevel struct {
	Level string `json:"level"`
}

// request is one line from the client.
type request struct {
	Op string `json:"op"`
	SyncOptions
	ID    int64  `json:"id,omitempty"`
	CRMID crm.ID `json:"crm_id,omitzero"`
	Level string `json:"level,omitempty"`
}

// response is one line from the server: Result or Error.
type response struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *wireError      `json:"error,omitempty"`
}

// syncWire is SyncResult on the wire.
type syncWire struct {
	SyncResult
	Err      *wireError `json:"err,omitempty"`
	EmailErr *wireError `json:"email_err,omitempty"`
}

// maxLine bounds a request or response line.
const maxLine = 1 << 20
