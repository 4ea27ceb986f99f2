package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/mapping"
	"github.com/pimbridge/pimbridge/pim/davext"
)

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

// createContacts makes n contacts as alice.
func (h *harness) createContacts(n int, prefix string) []crm.Record {
	out := make([]crm.Record, 0, n)
	for i := range n {
		out = append(out, h.createContact(h.CRM.Alice, map[string]any{"firstname": "Bench", "lastname": fmt.Sprintf("%s%05d", prefix, i), "emailaddress1": fmt.Sprintf("%s%05d@example.com", prefix, i)}))
	}
	return out
}

// BenchmarkFirstPush_Radicale1000: the bridge's first push of 1,000 CRM
// contacts to Radicale against a raw PUT loop of the same vCards at the same
// concurrency (1) and collection size. Target: >= 80% of the raw rate.
func BenchmarkFirstPush_Radicale1000(b *testing.B) {
	const n = 1000
	for range b.N {
		b.StopTimer()
		env := radicaleDAV(b)
		h := newHarness(b, env.fresh(b, "push"))
		recs := h.createContacts(n, "Push")
		// Raw: PUT the same vCards into another new address book.
		raw := env.fresh(b, "raw")
		c := raw.client(b)
		col := davext.NewCollection(c, raw.Book, davext.AddressBook)
		b.StartTimer()
		start := time.Now()
		for _, r := range recs {
			data, err := mapping.NewVCard(r, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := col.Create(context.Background(), r.ID.String()+".vcf", data); err != nil {
				b.Fatal(err)
			}
		}
		rawDur := time.Since(start)
		start = time.Now()
		st, err := h.alice().Cycle(context.Background(), bridge.CycleOptions{})
		ours := time.Since(start)
		if err != nil || st.ToPIM.Created != n {
			b.Fatalf("first push: %v %+v", err, st)
		}
		rawRate, ourRate := float64(n)/rawDur.Seconds(), float64(n)/ours.Seconds()
		ratio := ourRate / rawRate
		b.ReportMetric(ourRate, "items/s")
		b.ReportMetric(ratio, "ratio")
		b.Logf("LIMIT first push 1000 contacts to Radicale: %.0f%% of raw PUT loop (%.1f vs %.1f items/s) vs 80%% -> %s", ratio*100, ourRate, rawRate, verdict(ratio >= 0.8))
	}
}

// BenchmarkNoChangeCycle_Radicale10k: a no-change cycle over a 10k-item
// address book, task list and calendar on Radicale, against the raw
// sync-collection requests alone (one per collection with the current
// token). Target: <= 1.5x. vdirsyncer's no-change sync of the same address
// book is printed beside it.
func BenchmarkNoChangeCycle_Radicale10k(b *testing.B) {
	const n = 10000
	for range b.N {
		b.StopTimer()
		env := radicaleDAV(b)
		r := env
		h := newHarness(b, env)
		ctx := context.Background()
		// CRM records, and their PIM objects written exactly as the bridge
		// writes them, bulk-loaded (10k single PUTs would take hours).
		var books, tasks, cals bytes.Buffer
		for i := range n {
			c := h.createContact(h.CRM.Alice, map[string]any{"lastname": fmt.Sprintf("Big%05d", i)})
			tk := h.create(h.CRM.Alice, crm.EntityTask, map[string]any{"subject": fmt.Sprintf("Task %05d", i)})
			ap := h.create(h.CRM.Alice, crm.EntityAppointment, appt(future().Add(time.Duration(i)*time.Minute)))
			for _, x := range []struct {
				buf *bytes.Buffer
				rec crm.Record
			}{{&books, c}, {&tasks, tk}, {&cals, ap}} {
				var data []byte
				var err error
				if x.rec.Entity == crm.EntityContact {
					data, err = mapping.NewVCard(x.rec, nil)
				} else {
					data, err = mapping.NewICal(x.rec, nil)
				}
				if err != nil {
					b.Fatal(err)
				}
				x.buf.Write(data)
			}
		}
		book, taskCol, cal := env.paths("big")
		rad := env.Radicale
		rad.BulkLoad(b, book, "text/vcard", books.Bytes())
		rad.BulkLoad(b, taskCol, "text/calendar", joinCalendars(tasks.Bytes()))
		rad.BulkLoad(b, cal, "text/calendar", joinCalendars(cals.Bytes()))
		r.Book, r.Tasks, r.Calendar = book, taskCol, cal
		h.DAV = r
		br := h.alice()
		st, err := br.Cycle(ctx, bridge.CycleOptions{})
		if err != nil || st.Linked != 3*n || st.ToPIM.Created+st.ToCRM.Created+st.ToPIM.Updated+st.ToCRM.Updated != 0 {
			b.Fatalf("re-link of 30k: %v %+v", err, st)
		}
		// Raw: one sync-collection with the current token per collection.
		c := env.client(b)
		var tokens []string
		for _, col := range []string{book, taskCol, cal} {
			_, tok, _, err := c.SyncCollection(ctx, col, "", 1)
			if err != nil {
				b.Fatal(err)
			}
			tokens = append(tokens, tok)
		}
		b.StartTimer()
		start := time.Now()
		for i, col := range []string{book, taskCol, cal} {
			if _, _, _, err := c.SyncCollection(ctx, col, tokens[i], 0); err != nil {
				b.Fatal(err)
			}
		}
		raw := time.Since(start)
		start = time.Now()
		st, err = br.Cycle(ctx, bridge.CycleOptions{})
		ours := time.Since(start)
		b.StopTimer()
		if err != nil || st.ToPIM != (bridge.Counter{}) || st.ToCRM != (bridge.Counter{}) {
			b.Fatalf("no-change cycle: %v %+v", err, st)
		}
		ratio := ours.Seconds() / raw.Seconds()
		b.ReportMetric(ratio, "ratio")
		b.ReportMetric(float64(ours.Milliseconds()), "ms/cycle")
		b.Logf("LIMIT no-change cycle 3x10k on Radicale: %.2fx raw sync-collection (%v vs %v) vs 1.50x -> %s", ratio, ours.Round(time.Millisecond), raw.Round(time.Millisecond), verdict(ratio <= 1.5))
		if vd, err := vdirsyncerNoChange(b, env, book); err != nil {
			b.Logf("vdirsyncer: %v", err)
		} else {
			b.Logf("vdirsyncer no-change sync of the 10k address book: %v (ours, all three collections: %v)", vd.Round(time.Millisecond), ours.Round(time.Millisecond))
		}
	}
}

// joinCalendars turns concatenated VCALENDAR objects into one calendar file
// (Radicale's bulk PUT wants one VCALENDAR holding every component).
func joinCalendars(data []byte) []byte {
	var out bytes.Buffer
	out.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//pimbridge//bench//EN\r\n")
	for _, l := range bytes.SplitAfter(data, []byte("\r\n")) {
		s := string(bytes.TrimRight(l, "\r\n"))
		if s == "BEGIN:VCALENDAR" || s == "END:VCALENDAR" || s == "VERSION:2.0" || bytes.HasPrefix(l, []byte("PRODID:")) || s == "" {
			continue
		}
		out.Write(l)
	}
	out.WriteString("END:VCALENDAR\r\n")
	return out.Bytes()
}

// vdirsyncerNoChange syncs the address book to a folder with vdirsyncer
// once, then times a second, no-change sync.
func vdirsyncerNoChange(b *testing.B, env davEnv, book string) (time.Duration, error) {
	bin := "/usr/bin/vdirsyncer"
	if _, err := os.Stat(bin); err != nil {
		return 0, err
	}
	dir := b.TempDir()
	cfg := fmt.Sprintf(`[general]
status_path = "%s/status/"

[pair bench]
a = "bench_dav"
b = "bench_local"
collections = null

[storage bench_dav]
type = "carddav"
url = "%s%s"
username = "%s"
password = "%s"

[storage bench_local]
type = "filesystem"
path = "%s/local/"
fileext = ".vcf"
`, dir, env.URL, book, env.User, env.Password, dir)
	if err := os.MkdirAll(filepath.Join(dir, "local"), 0o700); err != nil {
		return 0, err
	}
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return 0, err
	}
	run := func(args ...string) error {
		cmd := exec.Command(bin, append([]string{"-c", path}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+dir, "LC_ALL=C.UTF-8", "LANG=C.UTF-8")
		cmd.Stdin = strings.NewReader(strings.Repeat("y\n", 20))
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("vdirsyncer %v: %v\n%s", args, err, out)
		}
		return nil
	}
	if err := run("discover"); err != nil {
		return 0, err
	}
	if err := run("sync"); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := run("sync"); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
