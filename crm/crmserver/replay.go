package crmserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// HeaderReplayID carries the idempotency key of a replayed write (the
// offline engine sends "<client id>.<replica id>/<queue row>"). The first
// successful write with a key records the key and its answer in the same
// transaction; the same key from the same user again is answered with the
// recorded answer and applies nothing (no write, no plug-in, no workflow).
// Keys are per user: another user's key is not visible, and that request
// runs as any other, with that user's rights.
const HeaderReplayID = "MSCRM.ReplayID"

// ReplayKeyTTL is how long a replay key is kept; older ones are pruned
// when a new one is recorded, and a replay after that applies again.
const ReplayKeyTTL = 30 * 24 * time.Hour

// maxReplayIDLen bounds a replay key.
const maxReplayIDLen = 200

// ReplayAnswer is the recorded answer of a replayed write.
type ReplayAnswer struct {
	Hash     string // of the request's method, path, query and body
	Status   int
	Header   http.Header
	Body     []byte // nil: no body
	Recorded time.Time
}

// replayKey returns the request's replay key ("" when none) after checking it.
func replayKey(h http.Header) (string, error) {
	k := strings.TrimSpace(h.Get(HeaderReplayID))
	if len(k) > maxReplayIDLen {
		return "", fmt.Errorf("%w: %s: longer than %d characters", crm.ErrInvalidArgument, HeaderReplayID, maxReplayIDLen)
	}
	return k, nil
}

func replayHash(r opRequest) string {
	h := sha256.New()
	h.Write([]byte(r.method + "\x00" + r.path + "\x00" + r.query.Encode() + "\x00"))
	h.Write(r.body)
	return hex.EncodeToString(h.Sum(nil))
}

// replayOnce wraps a write so that it applies at most once per user and
// key: a recorded answer is returned as it is, and a successful answer is
// recorded in the write's own transaction (in a $batch atomicity group, the
// group's, so the keys commit or vanish with the group).
func (s *Server) replayOnce(ctx context.Context, p *Principal, r opRequest, key string, fn func(Tx) (opResponse, error)) func(Tx) (opResponse, error) {
	hash := replayHash(r)
	return func(t Tx) (opResponse, error) {
		now := s.now()
		a, ok, err := t.ReplayAnswer(ctx, p.UserID, key)
		if err != nil {
			return opResponse{}, err
		}
		if ok && now.Sub(a.Recorded) < ReplayKeyTTL {
			if a.Hash != hash {
				return opResponse{}, fmt.Errorf("%w: %s %q was used for another request", crm.ErrConflict, HeaderReplayID, key)
			}
			s.log.Info("crmserver: replayed write already applied; answered from its key", "user", p.UserID, "key", key, "status", a.Status)
			return opResponse{status: a.Status, header: a.Header, body: a.Body}, nil
		}
		resp, err := fn(t)
		if err != nil || resp.status < 200 || resp.status > 299 {
			return resp, err
		}
		rec := ReplayAnswer{Hash: hash, Status: resp.status, Header: resp.header, Body: resp.body, Recorded: now}
		if err := t.SetReplayAnswer(ctx, p.UserID, key, rec, now.Add(-ReplayKeyTTL)); err != nil {
			return opResponse{}, err
		}
		return resp, nil
	}
}
