package crmserver_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// TestSecurity_Matrix runs every endpoint as nobody, with a wrong password,
// as bob on alice's records and subscription, and as a user without the
// sync privileges: each gets 401, 403 or 404 as appropriate, never data.
func TestSecurity_Matrix(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	const secret = "Zebulon-Secret-Name"
	contact, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": secret}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	task, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: "task", Attrs: map[string]any{"subject": secret}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := srv.Alice.Client.Subscribe(ctx, "laptop", crm.KindOffline)
	if err != nil {
		t.Fatal(err)
	}
	srv.Alice.Client.Prepare(ctx, sub.ID)
	batch, err := srv.Alice.Client.NextBatch(ctx, sub.ID, "task", 10)
	if err != nil || len(batch.Upserts) != 1 {
		t.Fatalf("alice's batch: %v %v", batch, err)
	}
	// carol: salesperson rights without Go Offline / Sync to Outlook.
	role := crmserver.BuiltinRoles()[1]
	role.Name, role.Privileges = "noprivs", nil
	if err := srv.Store.SaveRole(ctx, role); err != nil {
		t.Fatal(err)
	}
	carol := srv.AddUser(t, "carol", "carol-secret-pw", "noprivs")
	nobody := srv.AddUser(t, "nobody", "nobody-secret-pw")

	cid, tid := contact.ID.String(), task.ID.String()
	type ep struct{ method, path, body string }
	endpoints := []ep{
		{"GET", "/api/data/", ""},
		{"GET", "/api/data/contacts", ""},
		{"POST", "/api/data/contacts", `{"lastname":"x"}`},
		{"GET", "/api/data/contacts(" + cid + ")", ""},
		{"PATCH", "/api/data/contacts(" + cid + ")", `{"jobtitle":"x"}`},
		{"DELETE", "/api/data/contacts(" + cid + ")", ""},
		{"GET", "/api/data/tasks(" + tid + ")", ""},
		{"PATCH", "/api/data/tasks(" + tid + ")", `{"subject":"x"}`},
		{"DELETE", "/api/data/tasks(" + tid + ")", ""},
		{"POST", "/api/data/$batch", `{"requests":[{"id":"1","method":"GET","url":"tasks(` + tid + `)"}]}`},
		{"GET", "/api/metadata", ""},
		{"POST", "/api/metadata/contact/attributes", `{"logicalname":"new_x","type":"integer"}`},
		{"GET", "/api/messages", ""},
		{"GET", "/api/whoami", ""},
		{"POST", "/api/auth/token", ""},
		{"POST", "/api/sync/subscriptions", `{"clientid":"c","kind":"offline"}`},
		{"GET", "/api/sync/subscriptions", ""},
		{"GET", "/api/sync/subscriptions/" + sub.ID, ""},
		{"POST", "/api/sync/subscriptions/" + sub.ID + "/prepare", ""},
		{"GET", "/api/sync/subscriptions/" + sub.ID + "/batches?entity=task", ""},
		{"POST", "/api/sync/subscriptions/" + sub.ID + "/postsync", `{"batch":1}`},
		{"GET", "/api/sync/subscriptions/" + sub.ID + "/syncinfo", ""},
		{"POST", "/api/sync/subscriptions/" + sub.ID + "/syncinfo", `{"runid":"x"}`},
		{"DELETE", "/api/sync/subscriptions/" + sub.ID, ""},
		{"GET", "/api/sync/filters/contact", ""},
		{"PUT", "/api/sync/filters/contact", `{"filter":"ownerid eq @me"}`},
		{"GET", "/api/sync/primary", ""},
		{"POST", "/api/sync/primary", `{"clientid":"x"}`},
	}
	noData := func(t *testing.T, body string) {
		t.Helper()
		if strings.Contains(body, secret) {
			t.Errorf("answer leaks data: %s", body)
		}
	}
	for _, e := range endpoints {
		t.Run("noauth "+e.method+" "+e.path, func(t *testing.T) {
			st, h, b := raw(t, srv, "", "", e.method, e.path, nil, e.body)
			if st != 401 || errCode(t, b) != "unauthenticated" || h.Get("WWW-Authenticate") == "" {
				t.Errorf("= %d %s, want 401", st, b)
			}
			noData(t, b)
		})
		t.Run("badpw "+e.method+" "+e.path, func(t *testing.T) {
			// Past the login rate limit the answer is 429: refused all the same.
			st, _, b := raw(t, srv, "alice", "wrong-password", e.method, e.path, nil, e.body)
			if st != 401 && st != 429 {
				t.Errorf("= %d %s, want 401 or 429", st, b)
			}
			noData(t, b)
		})
	}
	// bob on alice's records and subscription.
	bobCases := []struct {
		ep   ep
		want int
	}{
		{ep{"GET", "/api/data/tasks(" + tid + ")", ""}, 404},
		{ep{"PATCH", "/api/data/tasks(" + tid + ")", `{"subject":"x"}`}, 404},
		{ep{"DELETE", "/api/data/tasks(" + tid + ")", ""}, 404},
		{ep{"PATCH", "/api/data/contacts(" + cid + ")", `{"jobtitle":"x"}`}, 403}, // contacts: read all, write own
		{ep{"DELETE", "/api/data/contacts(" + cid + ")", ""}, 403},
		{ep{"POST", "/api/data/tasks", `{"subject":"x","ownerid":{"logicalname":"systemuser","id":"` + srv.Alice.ID.String() + `"}}`}, 403},
		{ep{"GET", "/api/sync/subscriptions/" + sub.ID, ""}, 404},
		{ep{"POST", "/api/sync/subscriptions/" + sub.ID + "/prepare", ""}, 404},
		{ep{"GET", "/api/sync/subscriptions/" + sub.ID + "/batches?entity=task", ""}, 404},
		{ep{"POST", "/api/sync/subscriptions/" + sub.ID + "/postsync", `{"batch":1}`}, 404},
		{ep{"GET", "/api/sync/subscriptions/" + sub.ID + "/syncinfo", ""}, 404},
		{ep{"DELETE", "/api/sync/subscriptions/" + sub.ID, ""}, 404},
		{ep{"POST", "/api/metadata/contact/attributes", `{"logicalname":"new_x","type":"integer"}`}, 403},
		{ep{"PUT", "/api/sync/filters/contact?default=true", `{"filter":"ownerid eq @me"}`}, 403},
	}
	for _, c := range bobCases {
		t.Run("bob "+c.ep.method+" "+c.ep.path, func(t *testing.T) {
			st, _, b := raw(t, srv, "bob", crmtest.BobPassword, c.ep.method, c.ep.path, nil, c.ep.body)
			if st != c.want {
				t.Errorf("= %d %s, want %d", st, b, c.want)
			}
			noData(t, b)
		})
	}
	t.Run("bob's queries and batches hide alice's tasks", func(t *testing.T) {
		for _, p := range []string{"/api/data/tasks", "/api/data/tasks?$filter=contains(subject,'Zebulon')"} {
			st, _, b := raw(t, srv, "bob", crmtest.BobPassword, "GET", p, nil, "")
			if st != 200 {
				t.Errorf("GET %s = %d", p, st)
			}
			noData(t, b)
		}
		st, _, b := raw(t, srv, "bob", crmtest.BobPassword, "POST", "/api/data/$batch", nil, `{"requests":[{"id":"1","method":"GET","url":"tasks(`+tid+`)"}]}`)
		if st != 200 || !strings.Contains(b, `"status":404`) {
			t.Errorf("batch = %d %s", st, b)
		}
		noData(t, b)
		bs, _ := srv.Bob.Client.Subscribe(ctx, "phone", crm.KindOffline)
		srv.Bob.Client.Prepare(ctx, bs.ID)
		bb, err := srv.Bob.Client.NextBatch(ctx, bs.ID, "task", 10)
		if err != nil || len(bb.Upserts) != 0 {
			t.Errorf("bob's task batch = %+v, %v", bb, err)
		}
		if _, err := srv.Bob.Client.PostSync(ctx, bs.ID, batch.ID); err == nil {
			t.Errorf("bob acknowledged alice's batch %d through his own subscription", batch.ID)
		}
	})
	// carol lacks Go Offline and Sync to Outlook.
	for _, c := range []struct {
		kind string
		want int
	}{{"offline", 403}, {"outlook", 403}, {"addressbook", 200}} {
		t.Run("carol subscribes "+c.kind, func(t *testing.T) {
			st, _, b := raw(t, srv, "carol", carol.Password, "POST", "/api/sync/subscriptions", nil, `{"clientid":"c","kind":"`+c.kind+`"}`)
			if st != c.want {
				t.Errorf("= %d %s, want %d", st, b, c.want)
			}
		})
	}
	// A user without roles reads and writes nothing.
	for _, e := range []ep{{"GET", "/api/data/contacts", ""}, {"POST", "/api/data/contacts", `{"lastname":"x"}`}, {"GET", "/api/data/contacts(" + cid + ")", ""}} {
		t.Run("nobody "+e.method+" "+e.path, func(t *testing.T) {
			st, _, b := raw(t, srv, "nobody", nobody.Password, e.method, e.path, nil, e.body)
			if st != 403 && st != 404 {
				t.Errorf("= %d %s, want 403 or 404", st, b)
			}
			noData(t, b)
		})
	}
	// Bearer tokens work and bad ones do not.
	// The wrong-password rows above may have emptied the client address's
	// login bucket (they all come from 127.0.0.1): a right password then
	// waits out the delay like anyone else's.
	var tok string
	for deadline := time.Now().Add(30 * time.Second); ; {
		var err error
		tok, _, err = srv.Alice.Client.Token(ctx)
		var ae *crmclient.APIError
		if errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests && time.Now().Before(deadline) {
			time.Sleep(ae.RetryAfter + 100*time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	if _, err := srv.Client(t, "", "").WithToken(tok).Get(ctx, "task", task.ID); err != nil {
		t.Errorf("bearer token: %v", err)
	}
	st, _, _ := raw(t, srv, "", "", "GET", "/api/whoami", map[string]string{"Authorization": "Bearer " + tok + "x"}, "")
	if st != http.StatusUnauthorized {
		t.Errorf("bad token = %d", st)
	}
}
