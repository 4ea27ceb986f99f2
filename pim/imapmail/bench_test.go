package imapmail

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// bulkDovecot starts Dovecot with n messages written straight into INBOX.
func bulkDovecot(b *testing.B, n int) *server {
	b.Helper()
	srv := newDovecot(b)
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = testMail(fmt.Sprintf("bulk-%d@x", i), fmt.Sprintf("bulk %d", i))
	}
	srv.dovecot.WriteMaildir(b, srv.user, "INBOX", msgs)
	return srv
}

func limitLine(name string, got, limit float64, unit string, ok bool) string {
	verdict := "MISSED"
	if ok {
		verdict = "ok"
	}
	return fmt.Sprintf("LIMIT %s: %.4g%s vs %.4g%s -> %s", name, got, unit, limit, unit, verdict)
}

// BenchmarkChanges_NoChange10k measures Changes on an unchanged
// 10,000-message Dovecot folder (CONDSTORE): target < 300 ms and <= 3
// round trips.
func BenchmarkChanges_NoChange10k(b *testing.B) {
	const n = 10000
	srv := bulkDovecot(b, n)
	c := srv.dial(b)
	ctx := context.Background()
	start := time.Now()
	first, err := c.Changes(ctx, "INBOX", Cursor{})
	if err != nil {
		b.Fatal(err)
	}
	if len(first.Messages) != n {
		b.Fatalf("first Changes = %d messages, want %d", len(first.Messages), n)
	}
	b.Logf("first full Changes of %d messages (index + headers): %v", n, time.Since(start))
	cur := first.Cursor
	before := c.Stats()
	b.ResetTimer()
	for range b.N {
		cs, err := c.Changes(ctx, "INBOX", cur)
		if err != nil {
			b.Fatal(err)
		}
		if len(cs.Messages) != 0 || len(cs.Expunged) != 0 {
			b.Fatalf("no-change Changes = %d messages, %d expunged", len(cs.Messages), len(cs.Expunged))
		}
	}
	b.StopTimer()
	after := c.Stats()
	per := float64(b.Elapsed().Microseconds()) / 1000 / float64(b.N)
	rt := float64(after.RoundTrips-before.RoundTrips) / float64(b.N)
	cmds := float64(after.Commands-before.Commands) / float64(b.N)
	b.ReportMetric(per, "ms/cycle")
	b.ReportMetric(rt, "roundtrips/cycle")
	b.ReportMetric(cmds, "commands/cycle")
	b.Log(limitLine("imap no-change cycle 10k", per, 300, " ms", per < 300))
	b.Log(limitLine("imap no-change round trips", rt, 3, "", rt <= 3))

	// For comparison: one keyword change in the same folder.
	other := srv.dial(b)
	if err := other.SetKeyword(ctx, "INBOX", 0, []uint32{n / 2}, tracked); err != nil {
		b.Fatal(err)
	}
	before = c.Stats()
	t0 := time.Now()
	cs, err := c.Changes(ctx, "INBOX", cur)
	if err != nil || len(cs.Messages) != 1 {
		b.Fatalf("one-change Changes = %v, %v", cs, err)
	}
	after = c.Stats()
	b.Logf("one-change cycle 10k: %v, %d round trips, %d commands", time.Since(t0),
		after.RoundTrips-before.RoundTrips, after.Commands-before.Commands)
}

// BenchmarkChanges_Keyworded1k measures Changes reporting 1,000 messages
// that another session just keyworded $CRMTracked (headers included), next
// to a raw go-imap UID FETCH 1:* CHANGEDSINCE of the same items after the
// same kind of change. Each b.N iteration runs 5 rounds of both.
func BenchmarkChanges_Keyworded1k(b *testing.B) {
	const n, rounds = 1000, 5
	srv := bulkDovecot(b, n)
	c, other := srv.dial(b), srv.dial(b)
	ctx := context.Background()
	first, err := c.Changes(ctx, "INBOX", Cursor{})
	if err != nil {
		b.Fatal(err)
	}
	cur := first.Cursor
	uids := make([]uint32, n)
	for i := range uids {
		uids[i] = uint32(i + 1)
	}
	set := false
	toggle := func() {
		b.Helper()
		op := other.SetKeyword
		if set {
			op = other.ClearKeyword
		}
		set = !set
		if err := op(ctx, "INBOX", cur.UIDValidity, uids, tracked); err != nil {
			b.Fatal(err)
		}
	}
	raw, err := imapclient.DialInsecure(srv.addr, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	if err := raw.Login(srv.user, srv.pass).Wait(); err != nil {
		b.Fatal(err)
	}
	opts := &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true, ModSeq: true,
		BodySection: []*imap.FetchItemBodySection{headerSection(DefaultHeaderFields)}}

	var ours, theirs time.Duration
	b.ResetTimer()
	for range b.N {
		for range rounds {
			b.StopTimer()
			toggle()
			b.StartTimer()
			t0 := time.Now()
			cs, err := c.Changes(ctx, "INBOX", cur)
			ours += time.Since(t0)
			if err != nil || len(cs.Messages) != n {
				b.Fatalf("Changes = %v, want %d messages", err, n)
			}
			cur = cs.Cursor

			b.StopTimer()
			before, err := raw.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
			if err != nil {
				b.Fatal(err)
			}
			toggle()
			t0 = time.Now()
			if _, err := raw.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait(); err != nil {
				b.Fatal(err)
			}
			opts.ChangedSince = before.HighestModSeq
			bufs, err := raw.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, opts).Collect()
			theirs += time.Since(t0)
			if err != nil || len(bufs) != n {
				b.Fatalf("raw FETCH = %d, %v", len(bufs), err)
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	rate := float64(n*rounds*b.N) / ours.Seconds()
	rawRate := float64(n*rounds*b.N) / theirs.Seconds()
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(rawRate, "raw-msgs/s")
	b.Log(limitLine("imap keyworded 1k headers (msgs/s; limit: half the raw SELECT+UID FETCH rate)",
		rate, rawRate/2, " msg/s", rate >= rawRate/2))
	b.Logf("imap keyworded 1k: Changes %.0f msgs/s (%v per 1,000) vs raw SELECT + UID FETCH CHANGEDSINCE %.0f msgs/s (%v per 1,000)",
		rate, ours/time.Duration(rounds*b.N), rawRate, theirs/time.Duration(rounds*b.N))
}

// BenchmarkChanges_NoChangeScan10k measures the flag-scan path (no
// CONDSTORE) on an unchanged 10,000-message imapmemserver folder. It has
// no target: without CONDSTORE every cycle reads all flags.
func BenchmarkChanges_NoChangeScan10k(b *testing.B) {
	const n = 10000
	srv := newMemServer(b)
	msg := testMail("scan@x", "scan")
	for i := range n {
		if _, err := srv.mem.Append("INBOX", bytesLiteral(msg), &imap.AppendOptions{}); err != nil {
			b.Fatalf("append %d: %v", i, err)
		}
	}
	c := srv.dial(b)
	ctx := context.Background()
	first, err := c.Changes(ctx, "INBOX", Cursor{})
	if err != nil || len(first.Messages) != n {
		b.Fatalf("first Changes = %v", err)
	}
	cur := first.Cursor
	before := c.Stats()
	b.ResetTimer()
	for range b.N {
		cs, err := c.Changes(ctx, "INBOX", cur)
		if err != nil || len(cs.Messages) != 0 {
			b.Fatalf("no-change Changes = %v", err)
		}
	}
	b.StopTimer()
	after := c.Stats()
	per := float64(b.Elapsed().Microseconds()) / 1000 / float64(b.N)
	b.ReportMetric(per, "ms/cycle")
	b.ReportMetric(float64(after.RoundTrips-before.RoundTrips)/float64(b.N), "roundtrips/cycle")
	b.Logf("imap no-change flag-scan cycle 10k (imapmemserver): %.1f ms, %.1f round trips", per,
		float64(after.RoundTrips-before.RoundTrips)/float64(b.N))
}

type literal struct {
	*bytes.Reader
}

func (l literal) Size() int64 { return l.Reader.Size() }

func bytesLiteral(b []byte) literal { return literal{bytes.NewReader(b)} }
