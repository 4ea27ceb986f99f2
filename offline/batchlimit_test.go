package offline

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// sizeSpy records the batch sizes asked for and the refusals; with
// hideLimit it drops the server's maxbatchsize from prepare (a server that
// does not state it).
type sizeSpy struct {
	Remote
	hideLimit bool
	mu        sync.Mutex
	asked     []int
	refused   int
}

func (s *sizeSpy) Prepare(ctx context.Context, sub string) (crmclient.PrepareResult, error) {
	p, err := s.Remote.Prepare(ctx, sub)
	if s.hideLimit {
		p.MaxBatchSize = 0
	}
	return p, err
}

func (s *sizeSpy) Open(ctx context.Context, method, path string, h http.Header, body []byte) (*http.Response, error) {
	resp, err := s.Remote.Open(ctx, method, path, h, body)
	if u, perr := url.Parse(path); perr == nil && strings.HasSuffix(u.Path, "/batches") {
		n, _ := strconv.Atoi(u.Query().Get("size"))
		s.mu.Lock()
		s.asked = append(s.asked, n)
		if err == nil && resp.StatusCode == http.StatusBadRequest {
			s.refused++
		}
		s.mu.Unlock()
	}
	return resp, err
}

// TestGoOffline_BatchWithinServerLimit: a server that serves at most 7 rows
// a batch states it at prepare, and the sizer (told to start at 100 and to
// grow after every fast batch) never asks for more; a server that does not
// state it refuses the size, and GoOffline asks for less instead of
// failing.
func TestGoOffline_BatchWithinServerLimit(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, &crmtest.Options{Server: crmserver.Options{MaxBatchSize: 7}})
	seedContacts(t, srv, srv.Alice.ID, 40, "lim")
	for _, hide := range []bool{false, true} {
		name := map[bool]string{false: "stated", true: "not-stated"}[hide]
		t.Run(name, func(t *testing.T) {
			spy := &sizeSpy{Remote: srv.Alice.Client, hideLimit: hide}
			e := openEngine(t, "", &Options{ClientID: name, Batch: BatchSettings{RowsBatchSize: 100, MinBatchTime: time.Hour, MaxBatchTime: 2 * time.Hour}})
			if _, err := e.GoOffline(ctx, spy, aliceCred()); err != nil {
				t.Fatalf("GoOffline against a server serving 7 rows a batch: %v", err)
			}
			sameRecords(t, "contacts", serverRecords(t, srv, crm.EntityContact, srv.Alice.ID), storeRecords(t, e.Replica(), crm.EntityContact, crm.ID{}))
			over := 0
			for _, n := range spy.asked {
				if n > 7 {
					over++
				}
			}
			switch {
			case !hide && (over > 0 || spy.refused > 0):
				t.Errorf("asked sizes %v (%d refused); want none over the stated 7", spy.asked, spy.refused)
			case hide && spy.refused == 0:
				t.Errorf("asked sizes %v, none refused: the test did not exercise a refusal", spy.asked)
			case hide && (over != spy.refused || over > 3):
				// Halving from 40: 40, 20 and 10 refused, then 5 for good.
				t.Errorf("asked sizes %v (%d refused): after a refusal the sizer must stay under what was refused", spy.asked, spy.refused)
			}
			t.Logf("asked %v", spy.asked)
		})
	}
}

// TestBatchSettings_MaxRetryCountNegativeIsNoRetry: a failing batch with
// MaxRetryCount -1 (config max_retry_count = 0) fails the run at once.
func TestGoOffline_NoRetryWhenMaxRetryCountNegative(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	seedContacts(t, srv, srv.Alice.ID, 5, "r")
	for _, c := range []struct {
		retries, wantAsks int
	}{{-1, 1}, {2, 3}} {
		t.Run(strconv.Itoa(c.retries), func(t *testing.T) {
			f := &failingBatches{Remote: srv.Alice.Client}
			e := openEngine(t, "", &Options{ClientID: "r" + strconv.Itoa(c.retries), Batch: BatchSettings{MaxRetryCount: c.retries}})
			if _, err := e.GoOffline(ctx, f, aliceCred()); err == nil {
				t.Fatal("GoOffline succeeded against a server whose batches always fail")
			}
			if f.asks != c.wantAsks {
				t.Errorf("MaxRetryCount %d: %d batch requests, want %d", c.retries, f.asks, c.wantAsks)
			}
		})
	}
}

// failingBatches answers every batch request with 503.
type failingBatches struct {
	Remote
	asks int
}

func (f *failingBatches) Open(ctx context.Context, method, path string, h http.Header, body []byte) (*http.Response, error) {
	if strings.Contains(path, "/batches") {
		f.asks++
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: http.NoBody, Header: http.Header{}}, nil
	}
	return f.Remote.Open(ctx, method, path, h, body)
}
