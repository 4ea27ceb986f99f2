package crmserver_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

var guid = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// TestSecurity_NoExistenceOracle: a create with the id of a record the
// caller cannot read answers as for any taken id whatever the body (never
// the idempotent 204 that confirms the content), and a lookup to a record
// the caller cannot read is refused like one to a missing record.
func TestSecurity_NoExistenceOracle(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	tid := crm.NewID().String()
	if st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "POST", "/api/data/tasks", nil, `{"activityid":"`+tid+`","subject":"Secret plan"}`); st != 204 {
		t.Fatalf("alice's create = %d %s", st, b)
	}
	email, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: "email", Attrs: map[string]any{"subject": "Secret mail"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	norm := func(s string) string { return strings.ReplaceAll(s, tid, "ID") }
	sameBody, _, b1 := raw(t, srv, "bob", crmtest.BobPassword, "POST", "/api/data/tasks", nil, `{"activityid":"`+tid+`","subject":"Secret plan"}`)
	otherBody, _, b2 := raw(t, srv, "bob", crmtest.BobPassword, "POST", "/api/data/tasks", nil, `{"activityid":"`+tid+`","subject":"Guess"}`)
	if sameBody != 409 || otherBody != 409 || norm(b1) != norm(b2) {
		t.Errorf("create with an unreadable id: same body %d %s, other body %d %s; want the same 409", sameBody, b1, otherBody, b2)
	}
	// Alice, who can read it, still gets the idempotent answer.
	if st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "POST", "/api/data/tasks", nil, `{"activityid":"`+tid+`","subject":"Secret plan"}`); st != 204 {
		t.Errorf("alice's idempotent create = %d %s", st, b)
	}

	missing := crm.NewID().String()
	attach := func(obj string) (int, string) {
		st, _, b := raw(t, srv, "bob", crmtest.BobPassword, "POST", "/api/data/activitymimeattachments", nil,
			`{"filename":"a.txt","objectid@odata.bind":"/emails(`+obj+`)"}`)
		return st, guid.ReplaceAllString(b, "ID")
	}
	st1, b1 := attach(email.ID.String())
	st2, b2 := attach(missing)
	if st1 != st2 || b1 != b2 || st1 != 400 {
		t.Errorf("lookup to an unreadable record = %d %s, to a missing one %d %s; want the same 400", st1, b1, st2, b2)
	}
}
