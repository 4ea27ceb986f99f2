package offline

import (
	"context"
	"fmt"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// Status is what `pimbridge status` shows about the offline engine.
type Status struct {
	State     ClientState `json:"state"`
	Offline   bool        `json:"offline"`
	ServerURI string      `json:"serveruri"` // the API to use now: the server's or the local one
	ServerURL string      `json:"serverurl"`
	LocalURL  string      `json:"localurl"`
	// LocalServing reports whether something answers at LocalURL (set by
	// the caller that probed it; the engine does not).
	LocalServing  bool           `json:"localserving"`
	QueueLength   int64          `json:"queuelength"`
	SyncErrors    int            `json:"syncerrors"`
	LastGoOffline string         `json:"lastgooffline,omitempty"`
	LastGoOnline  string         `json:"lastgoonline,omitempty"`
	LastError     string         `json:"lasterror,omitempty"`
	PIMSyncError  string         `json:"pimsyncerror,omitempty"`
	MetadataVer   int64          `json:"metadataversion"`
	User          string         `json:"user,omitempty"`
	Runs          []crm.SyncInfo `json:"runs,omitempty"` // from syncinfo, newest first, when the server answered
	Version       string         `json:"versioncheck,omitempty"`
}

// Status reports the engine's state. listen is the local API address
// (DefaultListen when empty). r may be nil (no server call); with it, the
// last runs come from the server's syncinfo and the schema is compared
// (ClientVersionLower when the server has what the replica cannot hold).
func (e *Engine) Status(ctx context.Context, r Remote, listen string) (Status, error) {
	db := e.replica.DB()
	var s Status
	var err error
	if s.State, err = e.State(ctx); err != nil {
		return s, err
	}
	if listen == "" {
		listen = DefaultListen
	}
	s.LocalURL = "http://" + listen
	s.Offline = s.State.IsOffline()
	if s.State == Online || s.State == Offline {
		pim, err := getState(ctx, db, keyPIMSync)
		if err != nil {
			return s, err
		}
		if pim != "" {
			if s.State, err = ParseClientState(pim); err != nil {
				return s, err
			}
		}
		if s.PIMSyncError, err = getState(ctx, db, keyPIMSyncError); err != nil {
			return s, err
		}
	}
	if s.QueueLength, err = e.QueueLength(ctx); err != nil {
		return s, err
	}
	errs, err := e.Errors(ctx)
	if err != nil {
		return s, err
	}
	s.SyncErrors = len(errs)
	for _, kv := range []struct {
		k string
		v *string
	}{{keyServerURL, &s.ServerURL}, {keyLastOffline, &s.LastGoOffline}, {keyLastOnline, &s.LastGoOnline}, {keyLastError, &s.LastError}, {keyUserName, &s.User}} {
		if *kv.v, err = getState(ctx, db, kv.k); err != nil {
			return s, err
		}
	}
	if s.MetadataVer, err = e.ServerMetadataVersion(ctx); err != nil {
		return s, err
	}
	if r != nil {
		s.ServerURL = r.BaseURL()
		if sub, _ := getState(ctx, db, keySubscription); sub != "" {
			if runs, err := r.SyncInfo(ctx, sub); err == nil {
				s.Runs = runs
			}
		}
		if md, err := r.Metadata(ctx); err == nil {
			s.Version = "ok"
			local, _ := e.replica.Metadata(ctx)
			for _, se := range md.Entities {
				if _, err := local.Entity(se.Name); err != nil {
					if se.Custom {
						s.Version = fmt.Sprintf("ok: the server has the new custom entity %s; the next go-offline or refresh copies it", se.Name)
						continue
					}
					s.Version = fmt.Sprintf("%s: the server has entity %s", ClientVersionLower, se.Name)
					break
				}
			}
		} else {
			s.Version = "server unreachable"
		}
	}
	s.ServerURI = s.ServerURL
	if s.Offline {
		s.ServerURI = s.LocalURL
	}
	return s, nil
}

// SetOffline takes the client offline without synchronizing (SetOffline,
// docs/offline.md): the replica keeps what the last GoOffline brought.
func (e *Engine) SetOffline(ctx context.Context) error {
	e.run.Lock()
	defer e.run.Unlock()
	id, err := getState(ctx, e.replica.DB(), keyUserID)
	if err != nil {
		return err
	}
	last, err := getState(ctx, e.replica.DB(), keyLastOffline)
	if err != nil {
		return err
	}
	if id == "" || last == "" {
		return ErrNotReady
	}
	return e.setState(ctx, Offline)
}

// RefreshInterval is the background refresh period while online: def
// (the config's offline.refresh, 15 minutes when zero).
func RefreshInterval(def time.Duration) time.Duration {
	if def <= 0 {
		return 15 * time.Minute
	}
	return def
}
