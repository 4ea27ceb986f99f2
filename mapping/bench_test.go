package mapping

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// BenchmarkParseMapPatch parses, maps and patches 10k contacts and 10k
// events and reports objects/s against the 20k/s target (one core).
func BenchmarkParseMapPatch(b *testing.B) {
	const n = 10000
	opts := &Options{Now: fixedNow}
	cards := make([][]byte, n)
	events := make([][]byte, n)
	start := time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC)
	for i := range n {
		c, err := NewVCard(crm.Record{Entity: "contact", Attrs: map[string]any{
			"lastname": fmt.Sprintf("Müller %d", i), "firstname": "Anna", "emailaddress1": fmt.Sprintf("a%d@example.com", i),
			"telephone1": "+49 30 1234", "mobilephone": "+49 170 1", "address1_line1": "Hauptstr. 1", "address1_city": "Berlin",
			"jobtitle": "Leiterin", "description": "Notiz; mit, Zeichen\nZeile 2",
		}}, opts)
		if err != nil {
			b.Fatal(err)
		}
		cards[i] = c
		e, err := NewICal(crm.Record{Entity: "appointment", Attrs: map[string]any{
			"subject": fmt.Sprintf("Termin %d", i), "location": "Raum 1", "scheduledstart": start, "scheduledend": start.Add(time.Hour),
			"requiredattendees": []crm.Party{{Address: "a@example.com"}, {Address: "b@example.com"}},
		}}, opts)
		if err != nil {
			b.Fatal(err)
		}
		events[i] = e
	}
	cchange := crm.Record{Entity: "contact", Attrs: map[string]any{"jobtitle": "Direktorin"}}
	echange := crm.Record{Entity: "appointment", Attrs: map[string]any{"subject": "Verschoben", "scheduledstart": start.Add(time.Hour), "scheduledend": start.Add(2 * time.Hour)}}
	b.ResetTimer()
	begin, cpu0 := time.Now(), cpuTime()
	for range b.N {
		for i := range n {
			if _, err := VCardToCRM(cards[i], opts); err != nil {
				b.Fatal(err)
			}
			if _, err := PatchVCard(cards[i], cchange, opts); err != nil {
				b.Fatal(err)
			}
			if _, err := ICalToCRM(events[i], opts); err != nil {
				b.Fatal(err)
			}
			if _, err := PatchICal(events[i], echange, opts); err != nil {
				b.Fatal(err)
			}
		}
	}
	objs := float64(2 * n * b.N)
	wall := objs / time.Since(begin).Seconds()
	// The target is per core: divide by the CPU time the process used
	// (all threads, GC included), which does not depend on how busy the
	// shared machine is.
	perCore := objs / (cpuTime() - cpu0).Seconds()
	b.ReportMetric(wall, "objects/s")
	b.ReportMetric(perCore, "objects/cpu-s")
	verdict := "ok"
	if perCore < 20000 {
		verdict = "MISSED"
	}
	b.Logf("wall clock: %.0f objects/s (GOMAXPROCS=%d)", wall, runtime.GOMAXPROCS(0))
	b.Logf("LIMIT mapping objects/s: %.0f vs 20000 -> %s", perCore, verdict)
}

// cpuTime returns the user+system CPU time of the process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
