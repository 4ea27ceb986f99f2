package bridge_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/pim/davext"
)

// End-to-end invariants. Each names what it guards.
const (
	e2eTerminates    = "terminates"
	e2eNoDuplicates  = "no-duplicates"
	e2eConverges     = "converges"
	e2eWritesKept    = "every-user-write-in-crm-or-a-sync-error"
	e2eNothingLost   = "untouched-item-on-both-sides"
	e2eDeletionTable = "deleted-per-deletion-table"
	e2eTrackedStays  = "tracked-from-pim-stays-on-reassignment"
)

// knownBug is a violation this branch expects because of a known bug
// that another branch (or a later issue) fixes: it is logged with its
// seed, not failed. It matches one invariant and only the items of the
// bug, so every other violation of the invariant still fails.
type knownBug struct {
	inv   string
	bug   string
	match func(o *simObj) bool
}

// e2eKnownBroken: the lead removes an entry once its fix is merged.
var e2eKnownBroken = []knownBug{
	// What is left of bug G's limit (soak seeds 641168117, 641168145,
	// 641168164, 641168206): a deletion in the replica before the local
	// full set is reported (crmstore FullSetReportsTombstones), and the
	// server's subscription, when its full set was read before go-offline,
	// is resumed at go-online and reports deletions. When it was not (the
	// bridge never finished an online pass before going offline), go-online
	// starts it over; a record deleted since the bridge last read the local
	// API is then missing from the full set and taken as left the view: an
	// item tracked from the PIM side stays there, unlinked, and a contact
	// from CRM (which a deletion leaves there) is removed.
	{e2eDeletionTable, "offline: an item deleted in CRM around go-online, the server's subscription started over, is judged as left the view",
		func(o *simObj) bool {
			return o.atSwitch && o.crmDeleted && (o.fromPIM || o.entity == crm.EntityContact)
		}},
}

func knownFor(v e2eViolation) (string, bool) {
	for _, k := range e2eKnownBroken {
		if k.inv == v.inv && v.obj != nil && k.match(v.obj) {
			return k.bug, true
		}
	}
	return "", false
}

type e2eViolation struct {
	inv, msg string
	obj      *simObj
}

// seen is the end state: records and objects by key.
type seen struct {
	crm map[string][]crm.Record
	pim map[string][]string // key -> PIM object texts
}

func keyOf(subject string) string { k, _, _ := strings.Cut(subject, ":"); return k }

func (r *simRun) observe() seen {
	s := seen{crm: map[string][]crm.Record{}, pim: map[string][]string{}}
	prefix := fmt.Sprintf("r%d-", r.seed)
	for _, e := range simEntities {
		recs, err := r.admin.QueryAll(r.ctx, e, crmclient.Query{Filter: "startswith(" + titleAttr(e) + ",'" + prefix + "')"})
		if err != nil {
			r.t.Fatalf("seed %d: query %s: %v", r.seed, e, err)
		}
		for _, rec := range recs {
			subj, _ := rec.Attrs[titleAttr(e)].(string)
			if strings.HasPrefix(subj, prefix) {
				rec.Entity = e
				s.crm[keyOf(subj)] = append(s.crm[keyOf(subj)], rec)
			}
		}
	}
	for _, col := range []*davext.Collection{r.tasks, r.cal, r.book} {
		changed, _, _, err := col.Changes(r.ctx, "")
		if err != nil {
			r.t.Fatal(err)
		}
		for _, o := range changed {
			if k := keyOf(pimTitle(string(o.Data))); strings.HasPrefix(k, prefix) {
				s.pim[k] = append(s.pim[k], string(o.Data))
			}
		}
	}
	return s
}

func (r *simRun) check() []e2eViolation {
	var out []e2eViolation
	var cur *simObj
	add := func(inv, format string, args ...any) {
		out = append(out, e2eViolation{inv, fmt.Sprintf(format, args...), cur})
	}
	if r.runErr != nil {
		add(e2eTerminates, "%v", r.runErr)
	}
	s := r.observe()
	errs, err := r.cache.SyncErrors(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	excused := func(o *simObj) bool {
		for _, e := range errs {
			if o.href != "" && strings.Contains(e.Item, o.href) || o.crmID != (crm.ID{}) && strings.Contains(e.Item, o.crmID.String()) {
				return true
			}
		}
		return false
	}
	end := r.sh.clock.Now()
	for _, o := range r.objs {
		cur = o
		o.unconfirmed = o.href != "" && r.lostWrites[o.href]
		recs, objs := s.crm[o.key], s.pim[o.key]
		if len(recs) > 1 || len(objs) > 1 {
			add(e2eNoDuplicates, "%s: %d CRM records, %d PIM objects", o.key, len(recs), len(objs))
			continue
		}
		inCRM, onPIM := len(recs) == 1, len(objs) == 1
		if !o.removed() {
			if !inCRM || !onPIM {
				if !excused(o) {
					add(e2eNothingLost, "%s %s (from pim %v) untouched by removals: in CRM %v, on PIM %v", o.entity, o.key, o.fromPIM, inCRM, onPIM)
				}
				continue
			}
			rec := recs[0]
			subj, _ := rec.Attrs[titleAttr(o.entity)].(string)
			desc, _ := rec.Attrs["description"].(string)
			if (subj != o.subject || desc != o.desc) && !excused(o) {
				add(e2eWritesKept, "%s: CRM has subject %q description %q, the user wrote %q and %q", o.key, subj, desc, o.subject, o.desc)
			}
			ps, pd := pimTitle(objs[0]), pimDesc(objs[0])
			if (ps != subj || pd != desc) && !excused(o) {
				add(e2eConverges, "%s: CRM %q/%q, PIM %q/%q", o.key, subj, desc, ps, pd)
			}
			continue
		}
		// What the user deleted stays deleted on that side, whatever
		// else happened.
		if o.pimDeleted && onPIM || o.crmDeleted && inCRM {
			if !excused(o) {
				add(e2eDeletionTable, "%s %s deleted by the user (pim %v, crm %v) is back: on PIM %v, in CRM %v", o.entity, o.key, o.pimDeleted, o.crmDeleted, onPIM, inCRM)
			}
			continue
		}
		// One removal only, so the rule is plain.
		n := 0
		for _, b := range []bool{o.crmDeleted, o.pimDeleted, o.reassigned} {
			if b {
				n++
			}
		}
		if n != 1 {
			continue
		}
		// When the bridge judged "in the future" lies between the removal
		// and the end of the run; a start within that span is not judged.
		future := o.entity == crm.EntityAppointment && o.start.After(end)
		if o.entity == crm.EntityAppointment && !o.start.Before(o.removedAt) && !future {
			continue
		}
		switch {
		case !o.otherSide:
			// Never synced before its removal: nothing to expect of
			// the other side.
		case o.reassigned && o.fromPIM:
			if !onPIM {
				add(e2eTrackedStays, "%s %s created on the PIM side was removed from it when reassigned", o.entity, o.key)
			}
		case o.reassigned && o.pimEdits == 0:
			// Left the filter, no longer the user's: as a deletion in CRM
			// by someone else.
			wantGone := o.entity != crm.EntityAppointment || future
			if onPIM == wantGone && !excused(o) {
				add(e2eDeletionTable, "%s %s reassigned (future %v): on PIM %v", o.entity, o.key, future, onPIM)
			}
		case o.crmDeleted && o.pimEdits == 0:
			// Contacts: the user (alice) owns them, so they stay unlinked.
			wantGone := o.entity != crm.EntityAppointment && o.entity != crm.EntityContact || o.entity == crm.EntityAppointment && future
			if onPIM == wantGone && !excused(o) {
				add(e2eDeletionTable, "%s %s deleted in CRM (future %v): on PIM %v", o.entity, o.key, future, onPIM)
			}
		case o.pimDeleted && o.crmEdits == 0:
			// Appointments: deleted in CRM only if open, future and the
			// user's: here always open and alice's.
			// Contacts: never deleted in CRM from the PIM side.
			wantGone := o.entity != crm.EntityAppointment && o.entity != crm.EntityContact || o.entity == crm.EntityAppointment && future
			if inCRM == wantGone && !excused(o) {
				add(e2eDeletionTable, "%s %s deleted on the PIM side: in CRM %v", o.entity, o.key, inCRM)
			}
		}
	}
	return out
}

func unescapeText(s string) string {
	return strings.NewReplacer(`\n`, "\n", `\N`, "\n", `\,`, ",", `\;`, ";", `\\`, `\`).Replace(s)
}

var _ = idmap.SyncError{}

// e2eRun runs one seed on servers of its own (stopped when t ends), so
// that a run never depends on the runs before it.
//
// The ids the CRM server, the store and the bridge make are uuid.New();
// their source is the seed's for the run (uuid.SetRand is global: no test
// of this package runs in parallel), so that the order of records, hrefs
// and requests, and with it every fault decision, repeats.
func e2eRun(t testing.TB, seed uint64) ([]e2eViolation, *simRun) { return e2eRunWith(t, seed, nil) }

// e2eRunWith is e2eRun with setup applied to the run before it starts.
func e2eRunWith(t testing.TB, seed uint64, setup func(*simRun)) ([]e2eViolation, *simRun) {
	uuid.SetRand(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), 'u', 'i', 'd'}))
	t.Cleanup(func() { uuid.SetRand(nil) })
	r := newSimRun(t, newSimShared(t), seed)
	if setup != nil {
		setup(r)
	}
	r.run()
	return r.check(), r
}

const defaultE2ERuns = 100

// e2eReport logs a run's violations: known bugs as logs, the rest as
// errors with the replay command. It reports whether the run failed.
func e2eReport(t testing.TB, seed uint64, vs []e2eViolation, r *simRun, verbose bool) (failed bool) {
	t.Helper()
	for _, v := range vs {
		if why, ok := knownFor(v); ok {
			t.Logf("seed %d: known broken (%s): %s: %s", seed, why, v.inv, v.msg)
			continue
		}
		failed = true
		t.Errorf("seed %d: %s: %s\nreplay: PIMBRIDGE_SEED=%d go test -run TestRandomizedBridge ./bridge/", seed, v.inv, v.msg, seed)
	}
	if failed || verbose {
		t.Logf("seed %d: %d cycles, %d kills, faults %v, fault rate %d%%\n%s", seed, r.cycles, r.kills, r.faults, r.faultRate, strings.Join(r.log, "\n"))
	}
	return failed
}

// TestRandomizedBridge is the end-to-end check: 100 seeded runs, each on
// new servers. PIMBRIDGE_SEED=N replays run N alone (its log printed);
// PIMBRIDGE_E2E_RUNS=N changes the count; PIMBRIDGE_SOAK=10m runs from a
// time-chosen seed for that long and prints runs/s and failing seeds.
func TestRandomizedBridge(t *testing.T) {
	if s := os.Getenv("PIMBRIDGE_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		vs, r := e2eRun(t, seed)
		e2eReport(t, seed, vs, r, true)
		return
	}
	first, n, soak := uint64(1), uint64(defaultE2ERuns), time.Duration(0)
	if raceDetector {
		n = 3 // the full count runs without -race (make randomized)
	}
	if s := os.Getenv("PIMBRIDGE_E2E_RUNS"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		n = v
	}
	if d := os.Getenv("PIMBRIDGE_SOAK"); d != "" {
		var err error
		if soak, err = time.ParseDuration(d); err != nil {
			t.Fatalf("PIMBRIDGE_SOAK=%q: %v", d, err)
		}
		first, n = uint64(time.Now().UnixNano()%1e9), ^uint64(0)
	}
	start := time.Now()
	known := map[string][]uint64{}
	var failed []uint64
	runs := 0
	for seed := first; seed-first < n && len(failed) < 5; seed++ {
		if soak > 0 && time.Since(start) > soak {
			break
		}
		runs++
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			vs, r := e2eRun(t, seed)
			for _, v := range vs {
				if why, ok := knownFor(v); ok {
					known[why] = append(known[why], seed)
				}
			}
			if e2eReport(t, seed, vs, r, false) {
				failed = append(failed, seed)
			}
		})
	}
	el := time.Since(start)
	msg := fmt.Sprintf("%d end-to-end runs in %v (%.2f runs/s); failing seeds: %v; known-broken seeds: %v",
		runs, el.Round(time.Millisecond), float64(runs)/el.Seconds(), failed, known)
	t.Log(msg)
	if soak > 0 {
		fmt.Println("soak bridge: " + msg)
	}
}

var portRE = regexp.MustCompile(`127\.0\.0\.1:\d+`)

// fingerprint is the end state without ids: each key's subject and
// description on each side.
func (r *simRun) fingerprint() string {
	s := r.observe()
	var out []string
	for _, o := range r.objs {
		line := o.key
		for _, rec := range s.crm[o.key] {
			line += fmt.Sprintf(" crm(%v|%v)", rec.Attrs[titleAttr(o.entity)], rec.Attrs["description"])
		}
		for _, d := range s.pim[o.key] {
			line += fmt.Sprintf(" pim(%s|%s)", pimTitle(d), pimDesc(d))
		}
		out = append(out, line)
	}
	return strings.Join(out, "; ")
}
