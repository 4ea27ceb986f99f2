package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/ctl"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/mapping"
	"github.com/pimbridge/pimbridge/offline"
)

// TestErrors_DuplicateResolutionThroughDaemon: with the daemon running,
// two contacts made on the phone that duplicate detection matches are sync
// errors (sync.duplicates = "ask"); `errors retry ID --allow-duplicate`
// and `errors link ID CRM-ID` resolve them through the control socket (the
// CLI has no CRM password), and the next `sync` creates one and merges the
// other. `sync --target addressbook` fills carddav.directory.
func TestErrors_DuplicateResolutionThroughDaemon(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	if _, err := srv.Bob.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{
		"firstname": "Dana", "lastname": "Dup", "emailaddress1": "dana@example.com"}}, nil); err != nil {
		t.Fatal(err)
	}
	eve, err := srv.Bob.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{
		"firstname": "Eve", "lastname": "Existing", "emailaddress1": "eve@example.com", "jobtitle": "Buyer"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := srv.Bob.Client.Create(ctx, crm.Record{Entity: crm.EntityAccount, Attrs: map[string]any{"name": "Contoso"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dav, book, davHTTP := startAddressBook(t)
	dirBook, err := dav.CreateAddressBook(ctx, "alice", "directory", "CRM directory")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := writeAliceConfig(t, dir, srv.URL, davHTTP.URL+"/", book, "dup-test", "interval = \"1h\"\npoll = \"1h\"")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "directory = %q\n[sync]\nduplicates = \"ask\"\n", dirBook)
	f.Close()
	runCmd := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append([]string{"--config", cfg}, args...), strings.NewReader(""), &out, &errb)
		return out.String(), errb.String(), err
	}

	dctx, stopDaemon := context.WithCancel(ctx)
	defer stopDaemon()
	var dlog lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(dctx, []string{"--config", cfg, "daemon"}, nil, &bytes.Buffer{}, &dlog) }()
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	waitFor(t, wctx, "the daemon's first full cycle", func() (bool, error) {
		select {
		case err := <-done:
			t.Fatalf("daemon ended: %v\n%s", err, dlog.String())
		default:
		}
		c, err := ctl.Dial(ctx, filepath.Join(dir, "state", ctl.SocketName))
		if errors.Is(err, ctl.ErrNoDaemon) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		defer c.Close()
		st, err := c.Status(ctx)
		return err == nil && st.Cycles == 1, err
	})
	// The daemon's cycle filled the directory too.
	if _, err := dav.GetObject(ctx, dirBook+mapping.DirectoryCardName(crm.EntityAccount, acc.ID)); err != nil {
		t.Errorf("the daemon's cycle did not write the account's directory card: %v", err)
	}

	card := func(uid, fn, n, email, extra string) []byte {
		return []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + uid + "\r\nFN:" + fn + "\r\nN:" + n + "\r\nEMAIL:" + email + "\r\n" + extra + "END:VCARD\r\n")
	}
	if _, err := dav.PutObject(ctx, book+"dana.vcf", card("dana-1", "Dana Dupont", "Dupont;Dana;;;", "dana@example.com", ""), "", "*"); err != nil {
		t.Fatal(err)
	}
	if _, err := dav.PutObject(ctx, book+"eve.vcf", card("eve-1", "Eve Existing", "Existing;Eve;;;", "eve@example.com", "TEL;TYPE=CELL:+1 555 0142\r\n"), "", "*"); err != nil {
		t.Fatal(err)
	}
	os.Unsetenv("PIMBRIDGE_TEST_CRM_PW") // everything below goes through the daemon
	if out, errOut, err := runCmd("sync"); exitCode(&bytes.Buffer{}, err) != exitItemErrors {
		t.Fatalf("sync with two duplicates = %v, want exit 3\n%s%s", err, out, errOut)
	}
	out, _, err := runCmd("errors", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var es []idmap.SyncError
	if err := json.Unmarshal([]byte(out), &es); err != nil || len(es) != 2 {
		t.Fatalf("errors --json = %q, %v; want two sync errors", out, err)
	}
	ids := map[string]string{}
	for _, e := range es {
		ids[e.Item[strings.LastIndex(e.Item, "/")+1:]] = fmt.Sprint(e.ID)
	}
	if _, _, err := runCmd("errors", "discard", ids["dana.vcf"], "--allow-duplicate"); exitCode(&bytes.Buffer{}, err) != exitUsage {
		t.Errorf("errors discard --allow-duplicate = %v, want a usage error", err)
	}
	if out, errOut, err := runCmd("errors", "retry", ids["dana.vcf"], "--allow-duplicate"); err != nil || !strings.Contains(out, "will be created") {
		t.Fatalf("errors retry --allow-duplicate = %v\n%s%s", err, out, errOut)
	}
	if _, _, err := runCmd("errors", "link", ids["eve.vcf"], crm.NewID().String()); !errors.Is(err, bridge.ErrNoRecord) {
		t.Errorf("errors link to a missing record = %v, want the daemon's no such CRM record", err)
	}
	if out, errOut, err := runCmd("errors", "link", ids["eve.vcf"], eve.ID.String()); err != nil || !strings.Contains(out, "linked to "+eve.ID.String()) {
		t.Fatalf("errors link = %v\n%s%s", err, out, errOut)
	}
	if out, errOut, err := runCmd("sync"); err != nil {
		t.Fatalf("sync after the resolutions: %v\n%s%s", err, out, errOut)
	}
	count := func(email string) int {
		rs, err := srv.Admin.Client.QueryAll(ctx, crm.EntityContact, crmclient.Query{Filter: "emailaddress1 eq '" + email + "'"})
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	if n := count("dana@example.com"); n != 2 {
		t.Errorf("%d contacts dana@example.com, want 2 (the duplicate allowed)", n)
	}
	if n := count("eve@example.com"); n != 1 {
		t.Errorf("%d contacts eve@example.com, want 1 (linked)", n)
	}
	// Bob owns Eve: alice may link to it (she reads it) but not write the
	// phone's number into it, so the merge keeps it on the PIM side.
	obj, err := dav.GetObject(ctx, book+"eve.vcf")
	data := obj.Data
	if err != nil || !strings.Contains(strings.ToLower(string(data)), "x-crm-id:"+eve.ID.String()) || !strings.Contains(string(data), "+1 555 0142") ||
		!strings.Contains(string(data), "Buyer") {
		t.Errorf("eve.vcf after link: %q, %v; want X-CRM-ID %s, the number the user typed and the CRM title", data, err, eve.ID)
	}
	if out, errOut, err := runCmd("errors"); err != nil || !strings.Contains(out, "no sync errors") {
		t.Errorf("errors after the resolutions: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err := runCmd("sync", "--target", "addressbook")
	if err != nil || !strings.Contains(out, "directory: ") {
		t.Errorf("sync --target addressbook through the daemon = %v\n%s%s", err, out, errOut)
	}
	stopDaemon()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v\n%s", err, dlog.String())
	}
	// In-process: a renamed account reaches its card; nothing else is
	// written.
	os.Setenv("PIMBRIDGE_TEST_CRM_PW", crmtest.AlicePassword)
	if _, err := srv.Bob.Client.Update(ctx, crm.Record{Entity: crm.EntityAccount, ID: acc.ID, Attrs: map[string]any{"name": "Contoso Ltd"}}, nil); err != nil {
		t.Fatal(err)
	}
	out, errOut, err = runCmd("sync", "--target", "addressbook")
	if err != nil || !strings.HasPrefix(out, "directory: 0 created, 1 updated, 0 deleted") || strings.Contains(out, "to CRM:") {
		t.Errorf("sync --target addressbook in-process = %v\n%s%s; want only the directory, one card updated", err, out, errOut)
	}
	if obj, err := dav.GetObject(ctx, dirBook+mapping.DirectoryCardName(crm.EntityAccount, acc.ID)); err != nil || !strings.Contains(string(obj.Data), "FN:Contoso Ltd") {
		t.Errorf("account card after the rename: %q, %v", obj.Data, err)
	}
}

func TestSync_targetAddressbookNeedsDirectory(t *testing.T) {
	srv := crmtest.Start(t, nil)
	_, book, davHTTP := startAddressBook(t)
	dir := t.TempDir()
	cfg := writeAliceConfig(t, dir, srv.URL, davHTTP.URL+"/", book, "nodir", "")
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"--config", cfg, "sync", "--target", "addressbook"}, strings.NewReader(""), &out, &errb)
	if exitCode(io.Discard, err) != exitUsage || !strings.Contains(err.Error(), "carddav.directory") {
		t.Errorf("sync --target addressbook without carddav.directory = %v, want a usage error naming carddav.directory", err)
	}
}

// TestGoOnline_DuplicatesOption: go-online follows sync.duplicates: with
// "ask" a contact made offline that duplicates a CRM contact is a sync
// error; with "allow" its retry creates it.
func TestGoOnline_DuplicatesOption(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	if _, err := srv.Bob.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "Dup", "emailaddress1": "dup@example.com"}}, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	writeCfg := func(dup string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte("[crm]\nurl = \""+srv.URL+"\"\nuser = \"alice\"\npassword_env = \"PIMBRIDGE_TEST_CRM_PW\"\n[client]\nstate_dir = \""+dir+"/state\"\n[sync]\nduplicates = \""+dup+"\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg("ask")
	t.Setenv("PIMBRIDGE_TEST_CRM_PW", crmtest.AlicePassword)
	runCmd := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append([]string{"--config", cfg}, args...), strings.NewReader(""), &out, &errb)
		return out.String() + errb.String(), err
	}
	if out, err := runCmd("go-offline"); err != nil {
		t.Fatalf("go-offline: %v\n%s", err, out)
	}
	e, err := offline.Open(ctx, &offline.Options{Path: filepath.Join(dir, "state", "offline-alice.db")})
	if err != nil {
		t.Fatal(err)
	}
	lc, _ := crmclient.New(httptestServer(t, e.Handler()), &crmclient.Options{User: "alice", Password: crmtest.AlicePassword})
	if _, err := lc.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{"lastname": "Dupont", "emailaddress1": "dup@example.com"}}, nil); err != nil {
		t.Fatal(err)
	}
	e.Close()
	count := func() int {
		rs, err := srv.Admin.Client.QueryAll(ctx, crm.EntityContact, crmclient.Query{Filter: "emailaddress1 eq 'dup@example.com'"})
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	if out, err := runCmd("go-online", "--on-error=stay-offline"); exitCode(io.Discard, err) != exitItemErrors || count() != 1 {
		t.Fatalf("go-online with sync.duplicates = ask: %v, %d contacts\n%s; want exit 3 and no duplicate", err, count(), out)
	}
	writeCfg("allow")
	if out, err := runCmd("go-online", "--on-error=retry"); err != nil || count() != 2 {
		t.Fatalf("go-online with sync.duplicates = allow: %v, %d contacts\n%s; want the duplicate created", err, count(), out)
	}
}
