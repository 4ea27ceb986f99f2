package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/ctl"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/offline"
	"github.com/pimbridge/pimbridge/reconcile"
	"github.com/pimbridge/pimbridge/ui"
)

// screenshotEnv names a folder for the browser tests' screenshots; unset,
// they go to the test's temporary folder.
const screenshotEnv = "PIMBRIDGE_TEST_SCREENSHOTS"

// browser is a headless Chromium driven over the DevTools protocol.
type browser struct {
	t    *testing.T
	ctx  context.Context
	shot string // screenshot folder
}

// startBrowser starts Debian's chromium (or Chrome) headless. Missing, the
// test skips, or fails under CI=true.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: chromium is not installed (scripts/install-test-deps.sh installs it)", t.Name())
		}
		t.Skipf("%s: chromium is not installed (apt-get install chromium)", t.Name())
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1100, 900), chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", path, err)
	}
	dir := os.Getenv(screenshotEnv)
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, ctx: ctx, shot: dir}
}

// do runs steps with a deadline.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v\npage: %s", what, err, b.text("body"))
	}
}

// text is the visible text of the first element sel matches ("" when none).
func (b *browser) text(sel string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, sel)))
	return s
}

// waitText waits until sel's text contains want.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := b.text(sel)
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("browser: %s never showed %q; it shows %q\npage: %s", sel, want, got, b.text("body"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// screenshot saves the whole page as name.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shot, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// TestUI_Browser drives the real daemon's web page in headless Chromium:
// sign-in with the key and refusal without it; two duplicate sync errors
// resolved by "link" (with a search) and by "allow duplicate"; a cross-site
// form post and a cross-origin fetch that change nothing; a held-back mass
// deletion listed and confirmed; go offline with the progress bar reaching
// 100%; go online with a rejected write discarded. Screenshots of each page
// land in $PIMBRIDGE_TEST_SCREENSHOTS (or the test's temporary folder).
func TestUI_Browser(t *testing.T) {
	start := time.Now()
	b := startBrowser(t)
	t.Logf("%s: browser started", time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	if _, err := srv.Bob.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{
		"firstname": "Dana", "lastname": "Dup", "emailaddress1": "dana@example.com"}}, nil); err != nil {
		t.Fatal(err)
	}
	eve, err := srv.Bob.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{
		"firstname": "Eve", "lastname": "Existing", "emailaddress1": "eve@example.com"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mine []crm.ID
	for i, n := range []string{"Ada", "Ben", "Cy", "Di"} {
		r, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{
			"firstname": n, "lastname": "Mine", "emailaddress1": fmt.Sprintf("mine%d@example.com", i)}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, r.ID)
	}
	dav, book, davHTTP := startAddressBook(t)
	dir := t.TempDir()
	cfg := writeAliceConfig(t, dir, srv.URL, davHTTP.URL+"/", book, "ui-test", "interval = \"1h\"\npoll = \"1h\"\nlive = false")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "[sync]\nduplicates = \"ask\"\n[ui]\nlisten = \"127.0.0.1:0\"\n[offline]\nlisten = \"127.0.0.1:0\"\n")
	f.Close()
	runCmd := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append([]string{"--config", cfg}, args...), strings.NewReader(""), &out, &errb)
		return out.String() + errb.String(), err
	}
	syncErrors := func() map[string]int64 {
		t.Helper()
		out, err := runCmd("errors", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var es []idmap.SyncError
		if err := json.Unmarshal([]byte(out), &es); err != nil {
			t.Fatalf("errors --json: %v\n%s", err, out)
		}
		ids := map[string]int64{}
		for _, e := range es {
			ids[e.Item[strings.LastIndex(e.Item, "/")+1:]] = e.ID
		}
		return ids
	}
	countCRM := func(email string) int {
		t.Helper()
		rs, err := srv.Admin.Client.QueryAll(ctx, crm.EntityContact, crmclient.Query{Filter: "emailaddress1 eq '" + email + "'"})
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}

	dctx, stopDaemon := context.WithCancel(ctx)
	var dlog lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(dctx, []string{"--config", cfg, "daemon"}, nil, &bytes.Buffer{}, &dlog) }()
	t.Cleanup(func() {
		stopDaemon()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", dlog.String())
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	waitFor(t, wctx, "the daemon's first full cycle and its web page", func() (bool, error) {
		if _, err := os.Stat(filepath.Join(dir, "state", ui.AddrFile)); err != nil {
			return false, nil
		}
		c, err := ctl.Dial(ctx, filepath.Join(dir, "state", ctl.SocketName))
		if err != nil {
			return false, nil
		}
		defer c.Close()
		st, err := c.Status(ctx)
		return err == nil && st.Cycles >= 1, err
	})
	t.Logf("%s: daemon ready", time.Since(start).Round(time.Millisecond))
	out, err := runCmd("ui")
	if err != nil {
		t.Fatalf("pimbridge ui: %v\n%s", err, out)
	}
	signIn := strings.TrimSpace(out)
	base := signIn[:strings.Index(signIn, "/?key=")]
	if fi, err := os.Stat(filepath.Join(dir, "state", ui.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}

	// Sign-in: refused without the key or with a wrong one.
	t.Logf("%s: sign-in", time.Since(start).Round(time.Millisecond))
	b.do("open without key", chromedp.Navigate(base+"/errors"))
	if got := b.text("main"); !strings.Contains(got, "needs the daemon's access key") || strings.Contains(got, "Sync errors") {
		t.Fatalf("page without key shows %q, want the sign-in notice only", got)
	}
	b.screenshot("signin")
	b.do("open with a wrong key", chromedp.Navigate(base+"/?key=0000000000000000000000000000000000000000"))
	b.waitText("#refused", "not this daemon's")
	b.do("open with the key", chromedp.Navigate(signIn))
	b.waitText("#client", "ui-test · primary")
	b.waitText("#state", "Online")
	if loc, _ := chromedp.Run(b.ctx, chromedp.Location()); strings.Contains(loc, "key=") {
		t.Errorf("the address bar still carries the key: %s", loc)
	}
	b.screenshot("status")
	b.do("phone width", chromedp.EmulateViewport(390, 844))
	if w, err := chromedp.Run(b.ctx, chromedp.Evaluate[int]("document.documentElement.scrollWidth")); err != nil || w > 390 {
		t.Errorf("status page at phone width is %d px wide (%v), want <= 390", w, err)
	}
	b.screenshot("status-phone")
	b.do("desktop width", chromedp.EmulateViewport(1100, 900))

	// Two duplicates made on the phone.
	t.Logf("%s: duplicates", time.Since(start).Round(time.Millisecond))
	card := func(uid, fn, n, email string) []byte {
		return []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + uid + "\r\nFN:" + fn + "\r\nN:" + n + "\r\nEMAIL:" + email + "\r\nEND:VCARD\r\n")
	}
	if _, err := dav.PutObject(ctx, book+"dana.vcf", card("dana-1", "Dana Dupont", "Dupont;Dana;;;", "dana@example.com"), "", "*"); err != nil {
		t.Fatal(err)
	}
	if _, err := dav.PutObject(ctx, book+"eve.vcf", card("eve-1", "Eve Existing", "Existing;Eve;;;", "eve@example.com"), "", "*"); err != nil {
		t.Fatal(err)
	}
	syncNow := func() {
		t.Helper()
		b.do("sync now", chromedp.Navigate(base+"/"), chromedp.Click(chromedp.CSS("#sync-now")))
		b.waitText(".msg", "The cycle ran")
	}
	syncNow()
	b.waitText("#sync-errors", "2 to resolve")
	ids := syncErrors()
	if len(ids) != 2 {
		t.Fatalf("sync errors %v, want dana.vcf and eve.vcf", ids)
	}

	// Another origin (same site, other port; and another site) posts a
	// form and fetches: nothing changes, nothing is read.
	t.Logf("%s: cross-origin", time.Since(start).Round(time.Millisecond))
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><body><form id="f" method="post" action="%[1]s/errors/%[2]d/discard"><input name="confirm" value="yes"><input name="csrf" value="guess"></form>
<script>
window.leak = "pending"; window.posted = "pending";
fetch(%[1]q + "/errors", {credentials: "include"}).then(r => r.text()).then(t => { window.leak = t }, e => { window.leak = "blocked" });
fetch(%[1]q + "/errors/%[3]d/allow-duplicate", {method: "POST", mode: "no-cors", credentials: "include", body: new URLSearchParams({csrf: "guess"})}).then(() => { window.posted = "sent" }, () => { window.posted = "failed" });
</script></body>`, base, ids["dana.vcf"], ids["eve.vcf"])
	}))
	defer evil.Close()
	for _, origin := range []string{evil.URL, strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)} {
		b.do("open "+origin, chromedp.Navigate(origin))
		var leak string
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			leak, _ = chromedp.Run(b.ctx, chromedp.Evaluate[string](`window.posted === "pending" ? "pending" : String(window.leak)`))
			if leak != "pending" && leak != "" || time.Now().After(deadline) {
				break
			}
		}
		if leak != "blocked" {
			t.Errorf("a page at %s read the sync errors: %.200q", origin, leak)
		}
		b.do("cross-site form post", chromedp.Evaluate[chromedp.Void](`document.getElementById("f").submit()`), chromedp.WaitReady(chromedp.CSS("body")))
		// Same site: the cookie goes along and the Origin check refuses;
		// another site: the SameSite=Strict cookie stays home.
		want := "may not change anything"
		if strings.Contains(origin, "localhost") {
			want = "needs the daemon's access key"
		}
		b.waitText("body", want)
		if got := syncErrors(); len(got) != 2 {
			t.Fatalf("after the post from %s the sync errors are %v, want both still there", origin, got)
		}
	}
	b.do("back to the page", chromedp.Navigate(base+"/errors"))
	b.waitText("#error-"+fmt.Sprint(ids["eve.vcf"]), "eve.vcf")
	if strings.Contains(b.text("main"), "retry asked") {
		t.Errorf("the cross-origin fetch marked an error for retry:\n%s", b.text("main"))
	}
	b.screenshot("errors")

	// Resolve eve.vcf by linking it to Bob's Eve, found by a search.
	t.Logf("%s: link", time.Since(start).Round(time.Millisecond))
	b.do("link", chromedp.Click(chromedp.CSS(fmt.Sprintf("#error-%d a.link", ids["eve.vcf"]))), chromedp.WaitVisible(chromedp.CSS("#q")),
		chromedp.SendKeys(chromedp.CSS("#q"), "Existing"), chromedp.Click(chromedp.CSS("#search")))
	b.waitText(".matches", "Eve Existing <eve@example.com>")
	b.screenshot("link")
	b.do("link to Eve", chromedp.Click(chromedp.CSS(".matches button.link-to")))
	b.waitText(".msg", "Linked")
	// And dana.vcf by allowing the duplicate.
	t.Logf("%s: allow duplicate", time.Since(start).Round(time.Millisecond))
	b.do("allow duplicate", chromedp.Click(chromedp.CSS(fmt.Sprintf("#error-%d button.allow-duplicate", ids["dana.vcf"]))))
	b.waitText(".msg", "duplicates or not")
	syncNow()
	b.waitText("#sync-errors", "none")
	if n := countCRM("dana@example.com"); n != 2 {
		t.Errorf("%d contacts dana@example.com, want 2 (the duplicate allowed)", n)
	}
	if n := countCRM("eve@example.com"); n != 1 {
		t.Errorf("%d contacts eve@example.com, want 1 (linked)", n)
	}
	if obj, err := dav.GetObject(ctx, book+"eve.vcf"); err != nil || !strings.Contains(strings.ToLower(string(obj.Data)), "x-crm-id:"+eve.ID.String()) {
		t.Errorf("eve.vcf after the link: %q, %v; want X-CRM-ID %s", obj.Data, err, eve.ID)
	}
	b.waitText("#cycles", "contact")

	// A mass deletion on the phone is held back, listed, and confirmed.
	t.Logf("%s: mass deletion", time.Since(start).Round(time.Millisecond))
	objs, err := dav.ListObjects(ctx, book)
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for _, o := range objs {
		if strings.Contains(string(o.Data), "Mine") {
			if err := dav.DeleteObject(ctx, o.Path, ""); err != nil {
				t.Fatal(err)
			}
			deleted++
		}
	}
	if deleted != len(mine) {
		t.Fatalf("deleted %d of alice's cards on the phone, want %d", deleted, len(mine))
	}
	syncNow()
	b.waitText("#health", "would be deleted")
	b.do("plan", chromedp.Navigate(base+"/plan"))
	b.waitText("#held", fmt.Sprintf("%d of %d items", len(mine), len(mine)+2))
	if n, _ := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll("#held .held-items li").length`)); n != len(mine) {
		t.Errorf("the held deletion lists %d items, want %d:\n%s", n, len(mine), b.text("#held"))
	}
	b.screenshot("plan")
	b.do("confirm deletes", chromedp.Click(chromedp.CSS("#confirm-deletes")))
	b.waitText(".msg", "were applied")
	b.waitText("#no-held", "No deletion is held back")
	for _, id := range mine { // contacts deleted on the phone stay in CRM (the contact rule)
		if _, err := srv.Admin.Client.Get(ctx, crm.EntityContact, id); err != nil {
			t.Errorf("contact %s after the confirmed deletion: %v; want kept in CRM", id, err)
		}
	}
	b.do("status", chromedp.Navigate(base+"/"))
	b.waitText("#health", "ok")

	// Go offline with the progress bar.
	t.Logf("%s: go offline", time.Since(start).Round(time.Millisecond))
	b.do("offline page", chromedp.Navigate(base+"/offline"), chromedp.Click(chromedp.CSS("#go-offline")))
	b.waitText("#job h2", "done")
	b.waitText("#percent", "100%")
	if v, _ := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelector("#progress").value`)); v != 100 {
		t.Errorf("progress bar at %d, want 100", v)
	}
	if fig := b.text("#figures"); !strings.Contains(fig, "batch(es)") || strings.HasPrefix(fig, "0 batch") {
		t.Errorf("progress figures %q, want batches and rows", fig)
	}
	b.waitText("#state", "Offline")
	b.screenshot("offline")

	// A write made offline that the server rejects on replay (a
	// duplicate), discarded from the page.
	t.Logf("%s: go online", time.Since(start).Round(time.Millisecond))
	eng, err := offline.Open(ctx, &offline.Options{Path: filepath.Join(dir, "state", "offline-alice.db")})
	if err != nil {
		t.Fatal(err)
	}
	lc, _ := crmclient.New(httptestServer(t, eng.Handler()), &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	if _, err := lc.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "Again", "emailaddress1": "eve@example.com"}}, nil); err != nil {
		t.Fatal(err)
	}
	eng.Close()
	b.waitText("#queue", "1")
	b.do("go online", chromedp.Click(chromedp.CSS("#go-online")))
	b.waitText("#rejected", "eve@example.com")
	b.screenshot("offline-rejected")
	b.do("discard", chromedp.Click(chromedp.CSS("#discard-rejected")))
	b.waitText("#question", "Discard the rejected writes?")
	b.do("confirm discard", chromedp.Click(chromedp.CSS("#confirm")))
	b.waitText("#outcome", "Online.")
	b.waitText("#state", "Online")
	if strings.Contains(b.text("main"), "Writes the server rejected") {
		t.Errorf("rejected writes still listed after discard:\n%s", b.text("main"))
	}
	if n := countCRM("eve@example.com"); n != 1 {
		t.Errorf("%d contacts eve@example.com after the discard, want 1", n)
	}
	b.screenshot("offline-online")

	// Reading works without JavaScript (once the daemon has rewired
	// itself online).
	t.Logf("%s: without JavaScript", time.Since(start).Round(time.Millisecond))
	octx, ocancel := context.WithTimeout(ctx, 60*time.Second)
	defer ocancel()
	waitFor(t, octx, "the daemon wired online again", func() (bool, error) {
		c, err := ctl.Dial(ctx, filepath.Join(dir, "state", ctl.SocketName))
		if err != nil {
			return false, nil
		}
		defer c.Close()
		st, err := c.Status(ctx)
		return err == nil && !st.Offline, nil
	})
	b.do("scripts off", func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return chromedp.Void{}, err
	})
	for _, p := range []struct{ path, want string }{{"/", "Offline queue"}, {"/errors", "No sync errors."}, {"/plan", "No deletion is held back"}, {"/offline", "Go online"}} {
		b.do("open "+p.path+" without scripts", chromedp.Navigate(base+p.path))
		tctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		got, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("main")))
		cancel()
		if err != nil || !strings.Contains(got, p.want) {
			t.Errorf("%s without JavaScript shows %q, %v; want %q", p.path, got, err, p.want)
		}
	}
	t.Logf("browser test took %s; screenshots in %s", time.Since(start).Round(time.Millisecond), b.shot)
}

// TestMassDeletes_allCollections: the plan page lists every collection the
// guard held back, not only the first one errors.As would find.
func TestMassDeletes_allCollections(t *testing.T) {
	a := &reconcile.MassDeleteError{Collection: "/a/", Deletes: 3, Total: 4, Threshold: 0.5}
	b := &reconcile.MassDeleteError{Collection: "/b/", Deletes: 2, Total: 2, Threshold: 0.5}
	err := errors.Join(fmt.Errorf("bridge: %w; confirm", a), fmt.Errorf("bridge: %w; confirm", b))
	got := massDeletes(fmt.Errorf("outer: %w", err))
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("massDeletes = %v, want both collections", got)
	}
	if got := massDeletes(errors.New("other")); got != nil {
		t.Errorf("massDeletes(other) = %v, want none", got)
	}
}
