package mailtrack

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func limitLine(name string, got, limit float64, unit string, ok bool) string {
	verdict := "MISSED"
	if ok {
		verdict = "ok"
	}
	return fmt.Sprintf("LIMIT %s: %.4g%s vs %.4g%s -> %s", name, got, unit, limit, unit, verdict)
}

func bulk(b *testing.B, n int, prefix string) *env {
	e := newDovecotEnv(b)
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = testMail(fmt.Sprintf("%s-%d@x", prefix, i), "Ann <ann@example.com>", "bulk")
	}
	e.dovecot.WriteMaildir(b, e.user, "INBOX", msgs)
	return e
}

// BenchmarkCycle_NoChange10k: a tracking cycle over an unchanged
// 10,000-message INBOX on Dovecot (CONDSTORE; one watched folder, no
// Regarding folders): target < 300 ms and <= 3 round trips.
func BenchmarkCycle_NoChange10k(b *testing.B) {
	e := bulk(b, 10000, "nc")
	mb := e.dial(b)
	tr := e.tracker(b, "a.db", func(o *Options) {
		o.Mailbox, o.Folders, o.RegardingFolder = mb, []string{"INBOX"}, "-"
	})
	ctx := context.Background()
	t0 := time.Now()
	if _, err := tr.Cycle(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("first cycle over 10k untracked messages: %v", time.Since(t0))
	before := mb.Stats()
	b.ResetTimer()
	for range b.N {
		st, err := tr.Cycle(ctx)
		if err != nil || st.Changed != 0 {
			b.Fatalf("no-change cycle = %+v, %v", st, err)
		}
	}
	b.StopTimer()
	after := mb.Stats()
	per := float64(b.Elapsed().Microseconds()) / 1000 / float64(b.N)
	rt := float64(after.RoundTrips-before.RoundTrips) / float64(b.N)
	b.ReportMetric(per, "ms/cycle")
	b.ReportMetric(rt, "roundtrips/cycle")
	b.Log(limitLine("mailtrack no-change cycle 10k", per, 300, " ms", per < 300))
	b.Log(limitLine("mailtrack no-change round trips", rt, 3, "", rt <= 3))
}

// BenchmarkCycle_Track1k: tracking 1,000 messages another session just
// keyworded (CRM create of each, in-process CRM server), next to the raw
// IMAP full-message FETCH rate of the same messages.
func BenchmarkCycle_Track1k(b *testing.B) {
	const n = 1000
	var rate, rawRate float64
	for i := range b.N {
		b.StopTimer()
		e := bulk(b, n, fmt.Sprintf("t%d", i))
		mb, other := e.dial(b), e.dial(b)
		tr := e.tracker(b, "a.db", func(o *Options) { o.Mailbox, o.Folders, o.RegardingFolder = mb, []string{"INBOX"}, "-" })
		ctx := context.Background()
		if _, err := tr.Cycle(ctx); err != nil {
			b.Fatal(err)
		}
		uids := make([]uint32, n)
		for j := range uids {
			uids[j] = uint32(j + 1)
		}
		if err := other.SetKeyword(ctx, "INBOX", 0, uids, DefaultKeyword); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		st, err := tr.Cycle(ctx)
		el := time.Since(t0)
		b.StopTimer()
		if err != nil || st.Tracked+len(e.allEmails(b)) < n {
			b.Fatalf("cycle = %+v, %v", st, err)
		}
		rate = float64(n) / el.Seconds()
		t0 = time.Now()
		for _, u := range uids {
			if _, err := other.FetchMessage(ctx, "INBOX", 0, u); err != nil {
				b.Fatal(err)
			}
		}
		rawRate = float64(n) / time.Since(t0).Seconds()
	}
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(rawRate, "raw-fetch-msgs/s")
	b.Log(limitLine("mailtrack track 1k keyworded (msgs/s; limit: 1/20 of the raw per-message FETCH rate)",
		rate, rawRate/20, " msg/s", rate >= rawRate/20))
	b.Logf("mailtrack track 1k: %.0f msgs/s vs raw FETCH %.0f msgs/s", rate, rawRate)
}
