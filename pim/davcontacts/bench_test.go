package davcontacts_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/internal/realserver"
	"github.com/pimbridge/pimbridge/pim"
	"github.com/pimbridge/pimbridge/pim/davcalendar"
	"github.com/pimbridge/pimbridge/pim/davcontacts"
	"github.com/pimbridge/pimbridge/pim/pimtest"
)

// benchServer is a real server with one 10k-object collection.
type benchServer struct {
	name, url, user, pass, href string
	kind                        pimtest.Kind
}

var benchKinds = []struct {
	name string
	kind pimtest.Kind
	comp string
}{{"", pimtest.Contacts, ""}, {"events", pimtest.Events, "VEVENT"}, {"tasks", pimtest.Tasks, "VTODO"}}

func bulkRadicale(b *testing.B, n int) []benchServer {
	r := realserver.StartRadicale(b)
	var out []benchServer
	for _, k := range benchKinds {
		var buf bytes.Buffer
		ctype := "text/vcard"
		if k.kind != pimtest.Contacts {
			ctype = "text/calendar"
			buf.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//pimbridge//bench//EN\r\n")
		}
		for i := range n {
			obj := pimtest.Sample(k.kind, fmt.Sprintf("bulk-%s-%05d", k.name, i), fmt.Sprintf("Item %05d", i))
			if k.kind != pimtest.Contacts { // keep only the component
				s := string(obj)
				obj = []byte(s[strings.Index(s, "BEGIN:"+k.comp):strings.Index(s, "END:VCALENDAR")])
			}
			buf.Write(obj)
		}
		if k.kind != pimtest.Contacts {
			buf.WriteString("END:VCALENDAR\r\n")
		}
		href := r.CollectionPath("big" + k.name)
		r.BulkLoad(b, href, ctype, buf.Bytes())
		out = append(out, benchServer{strings.TrimSpace("radicale " + k.name), r.URL, r.User, r.Password, href, k.kind})
	}
	return out
}

func bulkXandikos(b *testing.B, n int) []benchServer {
	x := realserver.StartXandikos(b)
	c := client(b, x.URL, x.User, x.Password)
	var out []benchServer
	for _, k := range benchKinds {
		href := x.ContactsHome() + "big/"
		var err error
		if k.kind == pimtest.Contacts {
			err = c.MkAddressBook(context.Background(), href, "Big")
		} else {
			href = x.CalendarsHome() + "big" + k.name + "/"
			err = c.MkCalendar(context.Background(), href, "Big", k.comp)
		}
		if err != nil {
			b.Fatal(err)
		}
		files := make(map[string][]byte, n)
		for i := range n {
			uid := fmt.Sprintf("bulk-%s-%05d", k.name, i)
			files[uid+pimtest.Ext(k.kind)] = pimtest.Sample(k.kind, uid, "Item "+uid)
		}
		x.BulkLoad(b, href, files)
		out = append(out, benchServer{strings.TrimSpace("xandikos " + k.name), x.URL, x.User, x.Password, href, k.kind})
	}
	return out
}

// rawSync sends the bare sync-collection REPORT (getetag only) with token,
// the request a no-change cycle cannot do without.
func rawSync(ctx context.Context, s benchServer, token string) error {
	body := `<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>` + token +
		`</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`
	req, err := http.NewRequestWithContext(ctx, "REPORT", s.url+s.href, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Depth", "0")
	req.Header.Set("Content-Type", "application/xml; charset=utf-8")
	req.SetBasicAuth(s.user, s.pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusMultiStatus {
		return fmt.Errorf("raw sync-collection: %s", resp.Status)
	}
	return nil
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// BenchmarkNoChange: Changes() on an unchanged 10k-contact address book
// against the raw sync-collection request alone (target <= 1.5x).
func BenchmarkNoChange(b *testing.B) {
	const n, rounds = 10000, 3
	for _, start := range []func(*testing.B, int) []benchServer{bulkRadicale, bulkXandikos} {
		for _, s := range start(b, n) {
			benchNoChange(b, s, n, rounds)
		}
	}
}

func benchNoChange(b *testing.B, s benchServer, n, rounds int) {
	b.Run(strings.ReplaceAll(s.name, " ", "-"), func(b *testing.B) {
		ctx := context.Background()
		c := client(b, s.url, s.user, s.pass)
		var col interface {
			Changes(context.Context, string) ([]pim.Object, []string, string, error)
		} = davcontacts.New(c, s.href)
		if s.kind != pimtest.Contacts {
			col = davcalendar.New(c, s.href)
		}
		t0 := time.Now()
		changed, _, cursor, err := col.Changes(ctx, "")
		if err != nil || len(changed) != n {
			b.Fatalf("first Changes = %d objects, %v; want %d", len(changed), err, n)
		}
		b.Logf("%s: first full Changes of %d objects: %v", s.name, n, time.Since(t0).Round(time.Millisecond))
		token := strings.TrimPrefix(cursor, "s:")
		b.ResetTimer()
		for range b.N {
			var ours, raw []time.Duration
			for range rounds {
				t := time.Now()
				if err := rawSync(ctx, s, token); err != nil {
					b.Fatal(err)
				}
				raw = append(raw, time.Since(t))
				t = time.Now()
				changed, deleted, next, err := col.Changes(ctx, cursor)
				if err != nil || len(changed)+len(deleted) != 0 {
					b.Fatalf("no-change Changes = %d, %d, %v", len(changed), len(deleted), err)
				}
				ours = append(ours, time.Since(t))
				cursor = next
			}
			o, r := median(ours), median(raw)
			verdict := "ok"
			if float64(o) > 1.5*float64(r) {
				verdict = "MISSED"
			}
			b.ReportMetric(float64(o.Milliseconds()), "ms/changes")
			b.ReportMetric(float64(r.Milliseconds()), "ms/raw")
			b.ReportMetric(float64(o)/float64(r), "ratio")
			b.Logf("LIMIT dav no-change %s: %d ms vs %d ms (1.5x raw %d ms) -> %s", s.name, o.Milliseconds(),
				time.Duration(1.5*float64(r)).Milliseconds(), r.Milliseconds(), verdict)
		}
	})
}

// BenchmarkFirstPush: 1,000 new contacts to Radicale with Create against a
// raw PUT loop, same concurrency, each into its own new address book
// (same collection size). Target: Create reaches >= 80% of the raw rate.
func BenchmarkFirstPush(b *testing.B) {
	const n, workers = 1000, 4
	r := realserver.StartRadicale(b)
	ctx := context.Background()
	c := client(b, r.URL, r.User, r.Password)
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	run := func(f func(i int) error) time.Duration {
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		next := make(chan int)
		t := time.Now()
		for range workers {
			wg.Go(func() {
				for i := range next {
					if err := f(i); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		return time.Since(t)
	}
	for k := range b.N {
		rawHref, ourHref := r.CollectionPath(fmt.Sprintf("raw%d", k)), r.CollectionPath(fmt.Sprintf("ours%d", k))
		for _, h := range []string{rawHref, ourHref} {
			if err := c.MkAddressBook(ctx, h, h); err != nil {
				b.Fatal(err)
			}
		}
		raw := run(func(i int) error {
			uid := fmt.Sprintf("raw-%04d", i)
			req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.URL+rawHref+uid+".vcf",
				bytes.NewReader(pimtest.Sample(pimtest.Contacts, uid, "Raw "+uid)))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "text/vcard; charset=utf-8")
			req.SetBasicAuth(r.User, r.Password)
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("raw PUT: %s", resp.Status)
			}
			return nil
		})
		ab := davcontacts.New(c, ourHref)
		ours := run(func(i int) error {
			uid := fmt.Sprintf("our-%04d", i)
			_, err := ab.Create(ctx, uid+".vcf", pimtest.Sample(pimtest.Contacts, uid, "Our "+uid))
			return err
		})
		rawRate, ourRate := float64(n)/raw.Seconds(), float64(n)/ours.Seconds()
		verdict := "ok"
		if ourRate < 0.8*rawRate {
			verdict = "MISSED"
		}
		b.ReportMetric(ourRate, "creates/s")
		b.ReportMetric(rawRate, "rawputs/s")
		b.ReportMetric(ourRate/rawRate, "ratio")
		b.Logf("LIMIT dav first push radicale: %.1f creates/s vs %.1f (80%% of raw %.1f PUT/s, %d workers) -> %s",
			ourRate, 0.8*rawRate, rawRate, workers, verdict)
	}
}
