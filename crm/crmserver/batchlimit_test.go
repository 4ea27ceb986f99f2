package crmserver_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// batchParts is the number of GETs of the worst batch.
const batchParts = 1000

// seedContacts inserts n contacts owned by owner in one transaction.
func seedContacts(t *testing.T, srv *crmtest.Server, owner crm.ID, n int) {
	t.Helper()
	ctx := context.Background()
	m, err := srv.Store.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := m.Entity("contact")
	err = srv.Store.Update(ctx, func(tx crmserver.Tx) error {
		for i := range n {
			_, err := tx.Insert(ctx, e, crm.Record{Entity: "contact", ID: crm.NewID(), Attrs: map[string]any{
				"lastname": fmt.Sprintf("Contact %05d", i), "firstname": "Padded", "emailaddress1": fmt.Sprintf("c%05d@example.com", i),
				"description": strings.Repeat("x", 400),
				"ownerid":     crm.Ref{Entity: crm.EntitySystemUser, ID: owner},
			}})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSecurity_BatchResponseBounded: the worst $batch (1000 GETs of the
// largest page) over 10k contacts answers within the response limit, the
// requests past it fail with 413 batch_response_too_large, and the
// server's heap stays under 64 MB while it runs.
func TestSecurity_BatchResponseBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 10k contacts")
	}
	srv := crmtest.Start(t, nil)
	seedContacts(t, srv, srv.Alice.ID, 10000)
	var reqs []string
	for i := range batchParts {
		reqs = append(reqs, fmt.Sprintf(`{"id":"%d","method":"GET","url":"contacts","headers":{"Prefer":"odata.maxpagesize=5000"}}`, i))
	}
	body := `{"requests":[` + strings.Join(reqs, ",") + `]}`

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(2 * time.Millisecond)
		defer tk.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > peak.Load() {
					peak.Store(ms.HeapAlloc)
				}
			}
		}
	}()
	// The answer is read part by part, so that the test holds one part at
	// a time and the heap figure is the server's.
	req, err := http.NewRequest("POST", srv.URL+"/api/data/$batch", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("alice", crmtest.AlicePassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("batch = %d", resp.StatusCode)
	}
	// The answer is scanned, not decoded, so that the test itself holds
	// only a few KB and the heap figure is the server's: every part starts
	// with {"id":"<id>","status":<n> (record bodies have no "id" key).
	cr := &countingReader{r: resp.Body}
	parts, err := scanParts(bufio.NewReaderSize(cr, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	out := struct{ Responses []part }{parts}
	ok, refused := 0, 0
	for _, r := range out.Responses {
		switch {
		case r.Status == 200:
			ok++
		case r.Status == 413 && r.Code == "batch_response_too_large":
			refused++
		default:
			t.Fatalf("response %s = %d %s", r.ID, r.Status, r.Code)
		}
	}
	if ok == 0 || refused == 0 || out.Responses[0].Status != 200 || out.Responses[batchParts-1].Status != 413 {
		t.Errorf("ok %d, refused %d: want the first parts answered and the rest refused", ok, refused)
	}
	if cr.n > 10<<20 {
		t.Errorf("answer is %d bytes, want at most the 8 MiB limit plus the refusals", cr.n)
	}
	grew := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("answer %d bytes, %d parts answered, heap grew by %d MB at peak", cr.n, ok, grew>>20)
	if grew > 64<<20 {
		t.Errorf("heap grew by %d MB during the batch, want under 64 MB", grew>>20)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type part struct {
	ID     string
	Status int
	Code   string // error code of a 413
}

// scanParts reads a $batch answer as a stream and returns the id, status
// and (for 413) error code of each part.
func scanParts(r *bufio.Reader) ([]part, error) {
	const marker = `{"id":"`
	var parts []part
	var win []byte
	for {
		c, err := r.ReadByte()
		if err == io.EOF {
			return parts, nil
		}
		if err != nil {
			return nil, err
		}
		win = append(win, c)
		if len(win) > len(marker) {
			win = win[1:]
		}
		if string(win) != marker {
			continue
		}
		id, err := r.ReadString('"')
		if err != nil {
			return nil, err
		}
		head := make([]byte, len(`,"status":000`))
		if _, err := io.ReadFull(r, head); err != nil {
			return nil, err
		}
		st, err := strconv.Atoi(strings.TrimPrefix(string(head), `,"status":`))
		if err != nil {
			return nil, fmt.Errorf("part %s: status %q", id, head)
		}
		p := part{ID: strings.TrimSuffix(id, `"`), Status: st}
		if st == 413 {
			rest, _ := r.Peek(300)
			if strings.Contains(string(rest), `"code":"batch_response_too_large"`) {
				p.Code = "batch_response_too_large"
			}
		}
		parts = append(parts, p)
	}
}
