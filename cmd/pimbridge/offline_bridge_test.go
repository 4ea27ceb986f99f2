package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
	"github.com/pimbridge/pimbridge/offline"
)

// TestSync_offlinePIMEditsReachCRMOnGoOnline: with the client offline, the
// PIM sync goes on against the local replica; an edit and a new contact
// made in a CardDAV client land in the offline queue (not on the server),
// and go-online replays them: the server gets both, nothing is duplicated on
// either side afterwards.
func TestSync_offlinePIMEditsReachCRMOnGoOnline(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	me := crm.Ref{Entity: crm.EntitySystemUser, ID: srv.Alice.ID}
	ada, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: crm.EntityContact, Attrs: map[string]any{
		"firstname": "Ada", "lastname": "Lovelace", "jobtitle": "Engineer", "ownerid": me,
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dav, book, davHTTP := startAddressBook(t)

	dir := t.TempDir()
	cfg := writeAliceConfig(t, dir, srv.URL, davHTTP.URL+"/", book, "laptop", "")
	runCmd := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(ctx, append([]string{"--config", cfg}, args...), strings.NewReader(""), &out, &errb); err != nil {
			t.Fatalf("pimbridge %v: %v\n%s%s", args, err, out.String(), errb.String())
		}
		return out.String()
	}
	serverContacts := func() []crm.Record {
		t.Helper()
		recs, err := srv.Alice.Client.QueryAll(ctx, crm.EntityContact, crmclient.Query{})
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}

	runCmd("sync")
	objs, err := dav.ListObjects(ctx, book)
	if err != nil || len(objs) != 1 {
		t.Fatalf("after the first sync the address book holds %d objects (%v), want Ada", len(objs), err)
	}
	runCmd("go-offline")

	// A CardDAV client edits Ada's job title and creates Grace.
	edited := regexp.MustCompile(`(?m)^TITLE:[^\r\n]*`).ReplaceAll(objs[0].Data, []byte("TITLE:Countess"))
	if bytes.Equal(edited, objs[0].Data) {
		t.Fatalf("Ada's card has no TITLE line:\n%s", objs[0].Data)
	}
	if _, err := dav.PutObject(ctx, objs[0].Path, edited, objs[0].ETag, ""); err != nil {
		t.Fatal(err)
	}
	grace := "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:grace-1\r\nFN:Grace Hopper\r\nN:Hopper;Grace;;;\r\nEMAIL:grace@navy.example\r\nEND:VCARD\r\n"
	if _, err := dav.PutObject(ctx, book+"grace.vcf", []byte(grace), "", "*"); err != nil {
		t.Fatal(err)
	}

	runCmd("sync") // offline: against the replica
	if n := len(serverContacts()); n != 1 {
		t.Fatalf("the server has %d contacts while the client is offline, want 1 (writes must wait in the queue)", n)
	}
	if r, err := srv.Alice.Client.Get(ctx, crm.EntityContact, ada.ID, "jobtitle"); err != nil || r.Attrs["jobtitle"] != "Engineer" {
		t.Fatalf("server's Ada changed while offline: %v %v", r.Attrs, err)
	}
	var st offline.Status
	if err := json.Unmarshal([]byte(runCmd("status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Offline || st.QueueLength != 2 {
		t.Fatalf("status while offline = offline %v, queue %d; want offline with 2 queued writes", st.Offline, st.QueueLength)
	}

	runCmd("go-online", "--on-error=stay-offline")
	if r, err := srv.Alice.Client.Get(ctx, crm.EntityContact, ada.ID, "jobtitle"); err != nil || r.Attrs["jobtitle"] != "Countess" {
		t.Fatalf("after go-online the server's Ada = %v %v, want jobtitle Countess", r.Attrs, err)
	}
	runCmd("sync") // online again
	runCmd("sync")
	contacts := serverContacts()
	objs, err = dav.ListObjects(ctx, book)
	if err != nil {
		t.Fatal(err)
	}
	if len(contacts) != 2 || len(objs) != 2 {
		t.Fatalf("after going online: %d contacts on the server, %d cards; want 2 and 2 (no duplicates)", len(contacts), len(objs))
	}
	for _, c := range contacts {
		if c.Attrs["lastname"] != "Lovelace" && c.Attrs["lastname"] != "Hopper" {
			t.Errorf("unexpected contact %v", c.Attrs)
		}
	}
}
