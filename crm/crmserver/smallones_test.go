package crmserver_test

import (
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// TestSecurity_TopZero: $top=0 returns no rows.
func TestSecurity_TopZero(t *testing.T) {
	srv := crmtest.Start(t, nil)
	raw(t, srv, "alice", crmtest.AlicePassword, "POST", "/api/data/contacts", nil, `{"lastname":"One"}`)
	st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "GET", "/api/data/contacts?$top=0", nil, "")
	if st != 200 || !strings.Contains(b, `"value":[]`) {
		t.Errorf("$top=0 = %d %s, want no rows", st, b)
	}
}

// TestSecurity_UnsupportedQueryOptions: $skip, $count, $expand and unknown
// $ options answer 400 naming the option, as Dataverse does, rather than
// being ignored.
func TestSecurity_UnsupportedQueryOptions(t *testing.T) {
	srv := crmtest.Start(t, nil)
	for _, q := range []string{"$skip=1", "$count=true", "$expand=parentcustomerid", "$apply=x", "$search=x", "$frobnicate=1"} {
		opt, _, _ := strings.Cut(q, "=")
		for _, p := range []string{"/api/data/contacts?", "/api/data/contacts(" + crm.NewID().String() + ")?"} {
			st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "GET", p+q, nil, "")
			if st != 400 || !strings.Contains(b, opt) {
				t.Errorf("GET %s%s = %d %s, want 400 naming %s", p, q, st, b, opt)
			}
		}
	}
}

// TestSecurity_CreateAfterDelete: the id of a deleted record is not used
// again: a create naming it answers 409 conflict saying so, with the same
// body as before or another.
func TestSecurity_CreateAfterDelete(t *testing.T) {
	srv := crmtest.Start(t, nil)
	id := crm.NewID().String()
	body := `{"activityid":"` + id + `","subject":"Call back"}`
	if st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "POST", "/api/data/tasks", nil, body); st != 204 {
		t.Fatalf("create = %d %s", st, b)
	}
	if st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "DELETE", "/api/data/tasks("+id+")", nil, ""); st != 204 {
		t.Fatalf("delete = %d %s", st, b)
	}
	for _, b := range []string{body, `{"activityid":"` + id + `","subject":"Other"}`} {
		st, _, out := raw(t, srv, "alice", crmtest.AlicePassword, "POST", "/api/data/tasks", nil, b)
		if st != 409 || errCode(t, out) != "conflict" || !strings.Contains(out, "deleted") {
			t.Errorf("create %s after delete = %d %s, want 409 conflict naming the deletion", b, st, out)
		}
	}
	if st, _, _ := raw(t, srv, "alice", crmtest.AlicePassword, "GET", "/api/data/tasks("+id+")", nil, ""); st != 404 {
		t.Errorf("deleted task is back: %d", st)
	}
}

// TestSecurity_NumericRange: integers are range-checked from metadata,
// e.g. percentcomplete 0..100, durations not negative.
func TestSecurity_NumericRange(t *testing.T) {
	srv := crmtest.Start(t, nil)
	for _, c := range []struct {
		body string
		want int
	}{
		{`{"subject":"a","percentcomplete":101}`, 400},
		{`{"subject":"a","percentcomplete":-1}`, 400},
		{`{"subject":"a","actualdurationminutes":-5}`, 400},
		{`{"subject":"a","percentcomplete":100}`, 204},
		{`{"subject":"a","percentcomplete":0}`, 204},
	} {
		st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "POST", "/api/data/tasks", nil, c.body)
		if st != c.want || st == 400 && !strings.Contains(b, "percentcomplete") && !strings.Contains(b, "actualdurationminutes") {
			t.Errorf("create %s = %d %s, want %d naming the attribute", c.body, st, b, c.want)
		}
	}
}

// TestSecurity_CustomAttributeNames: a custom attribute cannot take the
// name of an internal column (the key column "id", a lookup's
// "<name>__type").
func TestSecurity_CustomAttributeNames(t *testing.T) {
	srv := crmtest.Start(t, nil)
	for _, n := range []string{"id", "parentcustomerid__type", "ownerid__type", "new__x"} {
		st, _, b := raw(t, srv, "admin", crmtest.AdminPassword, "POST", "/api/metadata/contact/attributes", nil, `{"logicalname":"`+n+`","type":"string","maxlength":10}`)
		if st != 400 || !strings.Contains(b, n) {
			t.Errorf("custom attribute %q = %d %s, want 400 naming it", n, st, b)
		}
	}
	if st, _, b := raw(t, srv, "admin", crmtest.AdminPassword, "POST", "/api/metadata/contact/attributes", nil, `{"logicalname":"new_ok","type":"string","maxlength":10}`); st != 201 {
		t.Errorf("a good name = %d %s", st, b)
	}
	if st, _, b := raw(t, srv, "alice", crmtest.AlicePassword, "GET", "/api/data/contacts?$top=1", nil, ""); st != 200 {
		t.Errorf("contacts after the attempts = %d %s", st, b)
	}
}
