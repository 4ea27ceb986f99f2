//go:build !race

package bridge_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/offline"
)

// The offline invariants fail when the rule they guard is broken on
// purpose, in a wrapper of the engine's client of the server (no
// production change).

// brokenRemote is an offline.Remote with the replay's writes replaced.
type brokenRemote struct {
	offline.Remote
	do    func(ctx context.Context, method, path string, header http.Header, body []byte) (*crmclient.Response, error)
	batch func(ctx context.Context, reqs []crm.BatchRequest) ([]crm.BatchResponse, error)
}

func (b brokenRemote) Do(ctx context.Context, method, path string, header http.Header, body []byte) (*crmclient.Response, error) {
	if b.do != nil && isReplay(header.Get(crm.HeaderCallerOrigin)) {
		return b.do(ctx, method, path, header, body)
	}
	return b.Remote.Do(ctx, method, path, header, body)
}

func (b brokenRemote) Batch(ctx context.Context, reqs []crm.BatchRequest) ([]crm.BatchResponse, error) {
	if b.batch != nil && len(reqs) > 0 && isReplay(reqs[0].Headers[crm.HeaderCallerOrigin]) {
		return b.batch(ctx, reqs)
	}
	return b.Remote.Batch(ctx, reqs)
}

func isReplay(origin string) bool { return strings.HasPrefix(strings.ToLower(origin), "offline") }

func TestRandomizedBridgeOffline_CatchesBrokenRule(t *testing.T) {
	cases := []struct {
		name     string
		inv      string
		wrap     func(offline.Remote) offline.Remote
		goOnline func(context.Context, *offline.Engine, offline.Remote, offline.ReplayOptions) error
	}{
		// Every replayed write is sent twice, the second time without its
		// replay key (as a replay that ignores the server's answer and
		// sends the row again under no key would; with the same key the
		// server answers the second send without applying it).
		{"ReplaySendsEachRowTwice", e2eReplayOnce, func(r offline.Remote) offline.Remote {
			return brokenRemote{Remote: r,
				do: func(ctx context.Context, method, path string, h http.Header, body []byte) (*crmclient.Response, error) {
					if _, err := r.Do(ctx, method, path, h, body); err != nil {
						return nil, err
					}
					h = h.Clone()
					h.Del(crmserver.HeaderReplayID)
					return r.Do(ctx, method, path, h, body)
				},
				batch: func(ctx context.Context, reqs []crm.BatchRequest) ([]crm.BatchResponse, error) {
					if _, err := r.Batch(ctx, reqs); err != nil {
						return nil, err
					}
					again := make([]crm.BatchRequest, len(reqs))
					for i, q := range reqs {
						q.Headers = maps.Clone(q.Headers)
						delete(q.Headers, crmserver.HeaderReplayID)
						again[i] = q
					}
					return r.Batch(ctx, again)
				}}
		}, nil},
		// The replay acknowledges every queued write without sending it:
		// the user's offline writes never reach CRM and are no sync error.
		{"ReplayAcknowledgedNotSent", e2eWritesKept + "|" + e2eNothingLost, func(r offline.Remote) offline.Remote {
			return brokenRemote{Remote: r,
				do: func(context.Context, string, string, http.Header, []byte) (*crmclient.Response, error) {
					return &crmclient.Response{Status: http.StatusNoContent}, nil
				},
				batch: func(_ context.Context, reqs []crm.BatchRequest) ([]crm.BatchResponse, error) {
					out := make([]crm.BatchResponse, len(reqs))
					for i, q := range reqs {
						out[i] = crm.BatchResponse{ID: q.ID, Status: http.StatusNoContent}
					}
					return out, nil
				}}
		}, nil},
		// GoOnline reports success before it replays: the client stays
		// offline with its queue, while the bridge goes back to the server.
		{"GoOnlineDoneBeforeReplay", e2eOfflineState, nil,
			func(context.Context, *offline.Engine, offline.Remote, offline.ReplayOptions) error { return nil }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 20; seed++ {
				var caught bool
				t.Run("", func(t *testing.T) {
					vs, _, _ := e2eOfflineRunBroken(t, seed, c.wrap, c.goOnline)
					for _, v := range vs {
						if strings.Contains("|"+c.inv+"|", "|"+v.inv+"|") {
							if _, known := knownFor(v); !known {
								caught = true
								t.Logf("seed %d: caught: %s: %s", seed, v.inv, v.msg)
							}
						}
					}
				})
				if caught {
					return
				}
			}
			t.Errorf("%s: no run of seeds 1..20 broke %s", c.name, c.inv)
		})
	}
}

// TestRandomizedBridgeOffline_Deterministic: an offline seed twice gives
// the same user actions, faults, kills and end state.
func TestRandomizedBridgeOffline_Deterministic(t *testing.T) {
	for _, seed := range []uint64{4, 9} {
		var runs [2]string
		for i := range runs {
			t.Run(fmt.Sprintf("seed=%d/run=%d", seed, i), func(t *testing.T) {
				vs, r, o := e2eOfflineRun(t, seed)
				var vl []string
				for _, v := range vs {
					vl = append(vl, v.inv+": "+v.msg)
				}
				out := fmt.Sprintf("%s\nfaults %v kills %d cycles %d engine kills %d restarts %d queued %d\nviolations %v\nend %s",
					strings.Join(r.log, "\n"), r.faults, r.kills, r.cycles, o.kills, o.restart, len(o.queued), vl, r.fingerprint())
				runs[i] = portRE.ReplaceAllString(out, "127.0.0.1:PORT")
			})
		}
		if runs[0] != runs[1] {
			t.Errorf("seed %d: two runs differ:\n--- first\n%s\n--- second\n%s", seed, runs[0], runs[1])
		}
	}
}

// TestRandomizedBridgeOffline_Regressions replays the seeds kept in
// testdata/randomized/offline-seeds.txt (one per line, # comments).
func TestRandomizedBridgeOffline_Regressions(t *testing.T) {
	data, err := os.ReadFile("testdata/randomized/offline-seeds.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.SplitN(line, "#", 2)[0])
		if line == "" {
			continue
		}
		seed, err := strconv.ParseUint(line, 10, 64)
		if err != nil {
			t.Fatalf("offline-seeds.txt: %q: %v", line, err)
		}
		n++
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			vs, r, _ := e2eOfflineRun(t, seed)
			e2eReport(t, seed, vs, r, false)
		})
	}
	if n == 0 {
		t.Fatal("offline-seeds.txt lists no seed")
	}
}
