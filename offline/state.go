package offline

import (
	"context"
	"fmt"
)

// ClientState is the state of the client (docs/offline.md), kept in
// the replica so that it survives restarts.
type ClientState int

// The client states that apply to pimbridge.
const (
	Online ClientState = iota
	Offline
	GoingOffline
	GoingOnline
	Syncing
	SyncError
	ServerUnavailable
	GoOfflineCanceled
	BackgroundSync
	ClientVersionLower
	ClientVersionHigher
)

var stateNames = []string{"Online", "Offline", "GoingOffline", "GoingOnline", "Syncing", "SyncError",
	"ServerUnavailable", "GoOfflineCanceled", "BackgroundSync", "ClientVersionLower", "ClientVersionHigher"}

func (s ClientState) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("ClientState(%d)", int(s))
}

// ParseClientState parses a state name.
func ParseClientState(name string) (ClientState, error) {
	for i, n := range stateNames {
		if n == name {
			return ClientState(i), nil
		}
	}
	return 0, fmt.Errorf("offline: unknown client state %q", name)
}

// MarshalText implements encoding.TextMarshaler.
func (s ClientState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *ClientState) UnmarshalText(b []byte) error {
	v, err := ParseClientState(string(b))
	*s = v
	return err
}

// IsOffline reports whether the local API is the one to use in state s:
// the client is offline, or went offline and came back with sync errors it
// was told to keep (they stay queued).
func (s ClientState) IsOffline() bool {
	return s == Offline || s == GoingOnline || s == SyncError
}

// The sync with the PIM servers (the "synchronization with
// Outlook" state) has its own key beside the client state, because the client
// state also says whether the client is offline: a PIM sync runs in either
// mode and must not change it. Status shows Syncing while a full PIM cycle
// runs and SyncError after one that ended with errors, in place of Online
// or Offline.
const (
	keyPIMSync      = "pim_sync"
	keyPIMSyncError = "pim_sync_error"
)

// PIMSyncStarted records that a full PIM sync cycle started (Syncing).
func (e *Engine) PIMSyncStarted(ctx context.Context) error {
	return setState(context.WithoutCancel(ctx), e.replica.DB(), keyPIMSync, Syncing.String())
}

// PIMSyncDone records the end of a full PIM sync cycle: SyncError when err
// is not nil (item errors included), nothing otherwise.
func (e *Engine) PIMSyncDone(ctx context.Context, err error) error {
	st, msg := "", ""
	if err != nil {
		st, msg = SyncError.String(), err.Error()
	}
	return setState(context.WithoutCancel(ctx), e.replica.DB(), keyPIMSync, st, keyPIMSyncError, msg)
}

// PIMSyncReset clears a Syncing mark left by a process that died in the
// middle of a PIM cycle (the daemon calls it at start; a SyncError stays).
func (e *Engine) PIMSyncReset(ctx context.Context) error {
	_, err := e.replica.DB().ExecContext(ctx, "DELETE FROM offline_state WHERE k = ? AND v = ?", keyPIMSync, Syncing.String())
	if err != nil {
		return fmt.Errorf("offline: reset PIM sync state: %w", err)
	}
	return nil
}
