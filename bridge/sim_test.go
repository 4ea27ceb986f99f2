package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/pim"
	"github.com/pimbridge/pimbridge/pim/davcalendar"
	"github.com/pimbridge/pimbridge/pim/davcontacts"
	"github.com/pimbridge/pimbridge/pim/davext"
)

// simObj is one item the simulated user made, and everything the user
// did to it since. Its key starts its subject on both sides
// ("r12-k3:v2"): the subject is edited only on the PIM side, the
// description only in CRM, so each side's writes are told apart.
type simObj struct {
	key      string
	entity   string
	fromPIM  bool
	start    time.Time // appointments
	crmID    crm.ID    // known once created in CRM or read back
	href     string    // known once on the PIM side
	subject  string    // the last subject the user wrote
	desc     string    // the last description the user wrote in CRM
	pimEdits int
	crmEdits int
	// Removals by the user.
	crmDeleted, pimDeleted, reassigned bool
	// otherSide: at its removal, the item existed on the other side (it
	// had been synced).
	otherSide bool
	touched   bool
	// raced: the user touched it while a cycle was running.
	raced bool
	// unconfirmed: a bridge write to its PIM object was applied but the
	// reply lost (set by the check).
	unconfirmed bool
	// removedAt is the time of the user's removal.
	removedAt time.Time
	// atSwitch: a PIM edit or a removal of it fell between the start of
	// the bridge's last cycle before a switch of its CRM endpoint
	// (go-offline, go-online) and its first full cycle after it (set by
	// sim_offline_test.go).
	atSwitch bool
}

func (o *simObj) removed() bool { return o.crmDeleted || o.pimDeleted || o.reassigned }

// simRun is one seeded end-to-end run.
type simRun struct {
	t     testing.TB
	sh    *simShared
	seed  uint64
	ctx   context.Context
	alice crmtest.User
	bob   crmtest.User
	admin *crmclient.Client
	tasks *davext.Collection // the user's own view (no faults)
	cal   *davext.Collection
	book  *davext.Collection
	dir   string // the bridge's state dir

	mu          sync.Mutex
	rng         *rand.Rand
	reorderRng  *rand.Rand // the user's actions that overtake a held reply (faultReorder)
	faultsOn    bool
	faultRate   int // percent of requests
	agitateRate int // percent of requests preceded by a user edit
	requests    int
	killAt      int
	cancel      context.CancelFunc
	faults      map[string]int
	kills       int
	cycles      int
	inCycle     bool

	objs  []*simObj
	log   []string
	cache *idmap.Store

	// wrapCRM and wrapCol, when set, wrap what the bridge drives: the
	// broken rules of sim_broken_test.go.
	wrapCRM func(bridge.CRM) bridge.CRM
	wrapCol func(bridge.Collection) bridge.Collection

	runErr error // the run did not end quiet
	// crmURL and userCRM, when set, are the CRM the bridge and the user
	// talk to instead of the server: the offline engine's local API
	// (sim_offline_test.go).
	crmURL  string
	userCRM *crmclient.Client
	// lostWrites are the PIM hrefs of PUTs whose outcome the bridge does
	// not know: applied with the reply lost, or cut by a kill.
	lostWrites map[string]bool
}

const simOwnerFields = "ownerid"

func newSimRun(t testing.TB, sh *simShared, seed uint64) *simRun {
	ctx := context.Background()
	r := &simRun{t: t, sh: sh, seed: seed, ctx: ctx, rng: newRand(seed), reorderRng: rand.New(rand.NewPCG(seed, 0x0e0d)), faults: map[string]int{}, dir: t.TempDir(), lostWrites: map[string]bool{}}
	r.alice, r.bob = sh.crm.Alice, sh.crm.Bob
	r.admin = sh.crm.Admin.Client
	tasks, err := sh.dav.CreateCalendar(ctx, "alice", fmt.Sprintf("r%d-tasks", seed), "Tasks", "VTODO")
	if err != nil {
		t.Fatal(err)
	}
	cal, err := sh.dav.CreateCalendar(ctx, "alice", fmt.Sprintf("r%d-cal", seed), "Calendar", "VEVENT")
	if err != nil {
		t.Fatal(err)
	}
	book, err := sh.dav.CreateAddressBook(ctx, "alice", fmt.Sprintf("r%d-book", seed), "Contacts")
	if err != nil {
		t.Fatal(err)
	}
	dc := r.davClient(nil)
	r.tasks, r.cal = davext.NewCollection(dc, tasks, davext.Calendar), davext.NewCollection(dc, cal, davext.Calendar)
	r.book = davext.NewCollection(dc, book, davext.AddressBook)
	r.faultRate, r.agitateRate = 2+r.rng.IntN(10), 2+r.rng.IntN(6)
	return r
}

func (r *simRun) davClient(rt http.RoundTripper) *davext.Client {
	var hc davext.HTTPClient
	if rt != nil {
		hc = &http.Client{Transport: rt, Timeout: 30 * time.Second}
	}
	c, err := davext.New(r.sh.davURL, &davext.Options{Username: "alice", Password: "pw", HTTPClient: hc,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RetryDelay: time.Millisecond})
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// newBridge starts the bridge process: the cache from the state dir and
// clients through the fault transport. Nothing survives from the last one.
func (r *simRun) newBridge() *bridge.Bridge {
	if r.cache != nil {
		r.cache.Close()
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("PIMBRIDGE_SIM_DEBUG") != "" {
		quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cache, err := idmap.OpenOptions(r.ctx, filepath.Join(r.dir, "cache.db"), &idmap.Options{Logger: quiet, Now: r.sh.clock.Now})
	if err != nil {
		r.t.Fatal(err)
	}
	r.cache = cache
	r.t.Cleanup(func() { cache.Close() })
	ft := &faultTransport{base: http.DefaultTransport, run: r}
	crmURL := r.sh.crm.URL
	if r.crmURL != "" {
		crmURL = r.crmURL
	}
	c, err := crmclient.New(crmURL, &crmclient.Options{User: r.alice.Name, Password: r.alice.Password,
		HTTPClient: &http.Client{Transport: ft, Timeout: 30 * time.Second}})
	if err != nil {
		r.t.Fatal(err)
	}
	dc := r.davClient(ft)
	wrapCRM := func(c bridge.CRM) bridge.CRM {
		if r.wrapCRM != nil {
			return r.wrapCRM(c)
		}
		return c
	}
	wrapCol := func(c bridge.Collection) bridge.Collection {
		if r.wrapCol != nil {
			return r.wrapCol(c)
		}
		return c
	}
	b, err := bridge.New(bridge.Options{
		CRM: wrapCRM(c), Fenced: func(g int64) bridge.CRM { return wrapCRM(c.WithGeneration(g)) }, ClientID: "desktop", Cache: cache,
		Contacts: wrapCol(davcontacts.New(dc, r.book.Href())),
		Tasks:    wrapCol(davcalendar.New(dc, r.tasks.Href())),
		Calendar: wrapCol(davcalendar.New(dc, r.cal.Href())),
		Settings: bridge.Settings{MassDeleteThreshold: 1},
		Retry:    idmap.RetryPolicy{MaxAttempts: 4, Base: time.Minute, Max: time.Hour},
		Logger:   quiet, Now: r.sh.clock.Now,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

func (r *simRun) killCycle() {
	r.mu.Lock()
	cancel := r.cancel
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// cycle runs one full cycle of b under faults; a kill point may end it,
// after which the bridge restarts from its state dir.
func (r *simRun) cycle(b *bridge.Bridge, faults bool) (*bridge.Bridge, bridge.Stats, error) {
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	r.mu.Lock()
	r.faultsOn, r.requests, r.killAt, r.cancel, r.inCycle = faults, 0, 0, cancel, true
	if faults && r.rng.IntN(3) == 0 {
		r.killAt = 1 + r.rng.IntN(40)
	}
	r.mu.Unlock()
	st, err := b.Cycle(ctx, bridge.CycleOptions{})
	r.mu.Lock()
	killed := ctx.Err() != nil
	r.faultsOn, r.cancel, r.inCycle = false, nil, false
	r.mu.Unlock()
	r.cycles++
	r.note("cycle %d done: %v", r.cycles, err)
	if killed {
		r.kills++
		r.note("killed during cycle %d", r.cycles)
		return r.newBridge(), st, errKilled
	}
	return b, st, err
}

func (r *simRun) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if r.inCycle {
		msg = "(during cycle) " + msg
	}
	r.log = append(r.log, msg)
	if os.Getenv("PIMBRIDGE_SIM_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "SIM: %s\n", r.log[len(r.log)-1])
	}
}

// run is the whole scenario: rounds of user edits and faulty cycles, then
// quiet cycles until nothing moves.
func (r *simRun) run() {
	b := r.newBridge()
	rounds := 2 + r.rng.IntN(3)
	for i := 0; i < rounds; i++ {
		for n := 1 + r.rng.IntN(4); n > 0; n-- {
			r.userOp(r.rng.IntN(1 << 30))
		}
		r.sh.clock.Advance(time.Duration(1+r.rng.IntN(30)) * time.Minute)
		var err error
		b, _, err = r.cycle(b, true)
		if err != nil {
			r.note("cycle %d: %v", r.cycles, err)
		}
	}
	r.quiesce(b)
}

// quiesce ends a run: quiet cycles (no faults, the clock past every retry
// delay) until nothing moves.
func (r *simRun) quiesce(b *bridge.Bridge) {
	for i := 0; ; i++ {
		r.sh.clock.Advance(2 * time.Hour)
		var st bridge.Stats
		var err error
		b, st, err = r.cycle(b, false)
		// Quiet: nothing written, and nothing pending but the items set
		// aside as sync errors (each one is the user's to retry or
		// discard).
		errs, cerr := r.cache.SyncErrors(r.ctx)
		if cerr != nil {
			r.t.Fatal(cerr)
		}
		quiet := st.ToCRM == (bridge.Counter{}) && st.ToPIM == (bridge.Counter{}) && st.Unlinked == 0 && st.Linked == 0 && st.Pending <= len(errs)
		if quiet && (err == nil || errors.Is(err, bridge.ErrItemErrors)) {
			return
		}
		if i == 6 {
			r.runErr = fmt.Errorf("no quiet cycle after 7 (last: %+v, %v)", st, err)
			return
		}
	}
}

// --- the user ---

func (r *simRun) key() string { return fmt.Sprintf("r%d-k%d", r.seed, len(r.objs)) }

var simEntities = []string{crm.EntityContact, crm.EntityTask, crm.EntityPhoneCall, crm.EntityLetter, crm.EntityFax, crm.EntityAppointment}

// titleAttr is the CRM attribute the key starts: the subject of an
// activity, the last name of a contact (N and FN on the PIM side).
func titleAttr(entity string) string {
	if entity == crm.EntityContact {
		return "lastname"
	}
	return "subject"
}

// pimTitle is the title of a PIM object: SUMMARY, or N's family name.
func pimTitle(data string) string {
	if t := icsProp(data, "SUMMARY"); t != "" {
		return t
	}
	fam, _, _ := strings.Cut(icsProp(data, "N"), ";")
	return fam
}

// pimDesc is the description of a PIM object: DESCRIPTION or NOTE.
func pimDesc(data string) string {
	if strings.Contains(data, "BEGIN:VCARD") {
		return unescapeText(icsProp(data, "NOTE"))
	}
	return unescapeText(icsProp(data, "DESCRIPTION"))
}

// userOp does one thing a user does, chosen by op. It never fails the run:
// a user's edit that the server refuses (a race with the bridge) is
// simply not made.
func (r *simRun) userOp(op int) {
	// A user's action takes a moment: no edit shares its second with the
	// bridge's last write (a tie would go to CRM by the merge rule).
	r.sh.clock.Advance(time.Second)
	g := rand.New(rand.NewPCG(uint64(op), r.seed))
	var live []*simObj
	for _, o := range r.objs {
		if !o.removed() {
			live = append(live, o)
		}
	}
	defer func() {
		if r.inCycle {
			for _, o := range r.objs {
				if o.touched {
					o.raced = true
				}
			}
		}
		for _, o := range r.objs {
			o.touched = false
		}
	}()
	kind := g.IntN(10)
	if len(live) == 0 || len(r.objs) < 3 && kind < 6 {
		kind = 6 + kind%4
	}
	switch kind {
	case 0, 1: // edit the subject on the PIM side
		o := live[g.IntN(len(live))]
		o.touched = true
		if r.pimEdit(o) {
			r.note("pim edit %s -> %s", o.key, o.subject)
		}
	case 2, 3: // edit the description in CRM
		o := live[g.IntN(len(live))]
		o.touched = true
		if r.crmEdit(o) {
			r.note("crm edit %s -> %s", o.key, o.desc)
		}
	case 4: // delete on one side
		o := live[g.IntN(len(live))]
		o.touched = true
		if g.IntN(2) == 0 {
			if id, ok := r.crmIDOf(o); ok {
				_, err := r.viewCRM().Get(r.ctx, o.entity, id)
				o.otherSide = err == nil
			}
			if r.pimDelete(o) {
				o.removedAt = r.sh.clock.Now()
				r.note("pim delete %s", o.key)
			}
		} else if id, ok := r.crmIDOf(o); ok {
			_, o.otherSide = r.pimObject(o)
			if err := r.aliceCRM().Delete(r.ctx, o.entity, id, nil); err == nil {
				o.crmDeleted, o.removedAt = true, r.sh.clock.Now()
				r.note("crm delete %s", o.key)
			}
		}
	case 5: // a manager reassigns it to bob: it leaves alice's filter and view
		o := live[g.IntN(len(live))]
		o.touched = true
		if id, ok := r.crmIDOf(o); ok {
			_, o.otherSide = r.pimObject(o)
			_, err := r.admin.Update(r.ctx, crm.Record{Entity: o.entity, ID: id,
				Attrs: map[string]any{simOwnerFields: crm.Ref{Entity: crm.EntitySystemUser, ID: r.bob.ID}}}, nil)
			if err == nil {
				o.reassigned, o.removedAt = true, r.sh.clock.Now()
				r.note("reassign %s", o.key)
			}
		}
	default: // create
		o := &simObj{key: r.key(), entity: simEntities[g.IntN(len(simEntities))], fromPIM: g.IntN(2) == 0}
		o.subject = o.key + ":v0"
		if o.entity == crm.EntityAppointment {
			o.start = r.sh.clock.Now().Add(time.Duration(g.IntN(96)-48) * time.Hour).Truncate(time.Second)
		}
		if o.fromPIM && o.entity != crm.EntityTask && o.entity != crm.EntityAppointment && o.entity != crm.EntityContact {
			o.entity = crm.EntityTask
		}
		o.touched = true
		if r.create(o) {
			r.objs = append(r.objs, o)
			r.note("create %s %s from pim=%v", o.entity, o.key, o.fromPIM)
		}
	}
}

// aliceCRM is the CRM the user writes to: the server, or the local API
// while offline.
func (r *simRun) aliceCRM() *crmclient.Client {
	if r.userCRM != nil {
		return r.userCRM
	}
	return r.alice.Client
}

// viewCRM sees every record of the run (the admin), or the user's
// replica while offline.
func (r *simRun) viewCRM() *crmclient.Client {
	if r.userCRM != nil {
		return r.userCRM
	}
	return r.admin
}

func (r *simRun) col(o *simObj) *davext.Collection {
	switch o.entity {
	case crm.EntityAppointment:
		return r.cal
	case crm.EntityContact:
		return r.book
	}
	return r.tasks
}

func (r *simRun) create(o *simObj) bool {
	if !o.fromPIM {
		attrs := map[string]any{titleAttr(o.entity): o.subject}
		if o.entity == crm.EntityAppointment {
			attrs["scheduledstart"], attrs["scheduledend"] = o.start, o.start.Add(time.Hour)
		}
		rec, err := r.aliceCRM().Create(r.ctx, crm.Record{Entity: o.entity, Attrs: attrs}, nil)
		if err != nil {
			r.t.Fatalf("seed %d: create %s: %v", r.seed, o.entity, err)
		}
		o.crmID = rec.ID
		return true
	}
	if o.entity == crm.EntityContact {
		vcf := "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + o.key + "\r\nFN:" + o.subject + "\r\nN:" + o.subject + ";;;;\r\nEND:VCARD\r\n"
		ref, err := r.book.Create(r.ctx, o.key+".vcf", []byte(vcf))
		if err != nil {
			r.t.Fatalf("seed %d: create on the PIM side: %v", r.seed, err)
		}
		o.href = ref.Href
		return true
	}
	ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//pimbridge-sim//EN\r\n"
	stamp := r.sh.clock.Now().UTC().Format("20060102T150405Z")
	if o.entity == crm.EntityAppointment {
		ics += "BEGIN:VEVENT\r\nUID:" + o.key + "\r\nDTSTAMP:" + stamp + "\r\nSUMMARY:" + o.subject +
			"\r\nDTSTART:" + o.start.UTC().Format("20060102T150405Z") + "\r\nDTEND:" + o.start.Add(time.Hour).UTC().Format("20060102T150405Z") +
			"\r\nEND:VEVENT\r\n"
	} else {
		ics += "BEGIN:VTODO\r\nUID:" + o.key + "\r\nDTSTAMP:" + stamp + "\r\nSUMMARY:" + o.subject + "\r\nEND:VTODO\r\n"
	}
	ics += "END:VCALENDAR\r\n"
	ref, err := r.col(o).Create(r.ctx, o.key+".ics", []byte(ics))
	if err != nil {
		r.t.Fatalf("seed %d: create on the PIM side: %v", r.seed, err)
	}
	o.href = ref.Href
	return true
}

// pimObject finds o's object on the PIM side (by its known href, else by
// the X-CRM-ID the bridge wrote).
func (r *simRun) pimObject(o *simObj) (pim.Object, bool) {
	if o.href == "" && o.crmID != (crm.ID{}) {
		changed, _, _, err := r.col(o).Changes(r.ctx, "")
		if err != nil {
			r.t.Fatal(err)
		}
		for _, obj := range changed {
			if strings.Contains(strings.ToLower(string(obj.Data)), "x-crm-id:"+o.crmID.String()) {
				o.href = obj.Href
			}
		}
	}
	if o.href == "" {
		return pim.Object{}, false
	}
	obj, err := r.col(o).Get(r.ctx, o.href)
	if err != nil {
		return pim.Object{}, false
	}
	return obj, true
}

func (r *simRun) crmIDOf(o *simObj) (crm.ID, bool) {
	if o.crmID != (crm.ID{}) {
		return o.crmID, true
	}
	obj, ok := r.pimObject(o)
	if !ok {
		return crm.ID{}, false
	}
	if v := icsProp(string(obj.Data), "X-CRM-ID"); v != "" {
		if id, err := crm.ParseID(v); err == nil {
			o.crmID = id
			return id, true
		}
	}
	return crm.ID{}, false
}

func (r *simRun) pimEdit(o *simObj) bool {
	obj, ok := r.pimObject(o)
	if !ok {
		return false
	}
	next := fmt.Sprintf("%s:v%d", o.key, o.pimEdits+1)
	var data string
	if o.entity == crm.EntityContact {
		data = setICSProp(setICSProp(string(obj.Data), "FN", next), "N", next+";;;;")
	} else {
		data = setICSProp(string(obj.Data), "SUMMARY", next)
		data = setICSProp(data, "LAST-MODIFIED", r.sh.clock.Now().UTC().Format("20060102T150405Z"))
	}
	if _, err := r.col(o).Update(r.ctx, obj.Href, obj.ETag, []byte(data)); err != nil {
		return false
	}
	o.pimEdits++
	o.subject = next
	return true
}

func (r *simRun) crmEdit(o *simObj) bool {
	id, ok := r.crmIDOf(o)
	if !ok {
		return false
	}
	next := fmt.Sprintf("d-%s-%d", o.key, o.crmEdits+1)
	if _, err := r.aliceCRM().Update(r.ctx, crm.Record{Entity: o.entity, ID: id, Attrs: map[string]any{"description": next}}, nil); err != nil {
		return false
	}
	o.crmEdits++
	o.desc = next
	return true
}

func (r *simRun) pimDelete(o *simObj) bool {
	obj, ok := r.pimObject(o)
	if !ok {
		return false
	}
	if err := r.col(o).Delete(r.ctx, obj.Href, ""); err != nil {
		return false
	}
	o.pimDeleted = true
	return true
}

// icsProp returns the (unfolded, unescaped enough for keys) value of the
// first property name in an iCalendar text.
func icsProp(data, name string) string {
	for _, l := range strings.Split(strings.ReplaceAll(data, "\r\n ", ""), "\r\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		if base, _, _ := strings.Cut(k, ";"); strings.EqualFold(base, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// setICSProp replaces (or adds, in the first component) one property.
func setICSProp(data, name, value string) string {
	lines := strings.Split(strings.ReplaceAll(data, "\r\n ", ""), "\r\n")
	for i, l := range lines {
		k, _, _ := strings.Cut(l, ":")
		if base, _, _ := strings.Cut(k, ";"); strings.EqualFold(base, name) {
			lines[i] = name + ":" + value
			return strings.Join(lines, "\r\n")
		}
	}
	for i, l := range lines {
		if l == "BEGIN:VTODO" || l == "BEGIN:VEVENT" {
			lines = append(lines[:i+1], append([]string{name + ":" + value}, lines[i+1:]...)...)
			break
		}
	}
	return strings.Join(lines, "\r\n")
}

// sortedKeys returns m's keys in order, for stable messages.
func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
