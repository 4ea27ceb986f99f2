package crmserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// raw sends a request with Basic auth and returns status, headers and body.
func raw(t *testing.T, srv *crmtest.Server, user, pw, method, path string, header map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func errCode(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	if e.Error.Message == "" {
		t.Errorf("error body %q has no message", body)
	}
	return e.Error.Code
}

func TestAPI_CRUD(t *testing.T) {
	srv := crmtest.Start(t, nil)
	a := srv.Alice
	id := crm.NewID()
	body := `{"contactid":"` + id.String() + `","firstname":"Ann","lastname":"Smith","emailaddress1":"ann@example.com","birthdate":"1980-02-29"}`

	// POST: 204 + OData-EntityId.
	st, h, b := raw(t, srv, a.Name, a.Password, "POST", "/api/data/contacts", nil, body)
	if st != http.StatusNoContent || !strings.HasSuffix(h.Get("OData-EntityId"), "/api/data/contacts("+id.String()+")") {
		t.Fatalf("POST = %d %q %s, want 204 with OData-EntityId", st, h.Get("OData-EntityId"), b)
	}
	// Same id and body again: idempotent 204; different body: 409.
	if st, _, b := raw(t, srv, a.Name, a.Password, "POST", "/api/data/contacts", nil, body); st != http.StatusNoContent {
		t.Errorf("re-POST same body = %d %s, want 204", st, b)
	}
	other := strings.Replace(body, "Smith", "Jones", 1)
	if st, _, b := raw(t, srv, a.Name, a.Password, "POST", "/api/data/contacts", nil, other); st != http.StatusConflict || errCode(t, b) != "conflict" {
		t.Errorf("re-POST other body = %d %s, want 409 conflict", st, b)
	}
	// Prefer: return=representation gives 201 and the record.
	st, _, b = raw(t, srv, a.Name, a.Password, "POST", "/api/data/contacts", map[string]string{"Prefer": "return=representation"}, `{"lastname":"Rep"}`)
	if st != http.StatusCreated || !strings.Contains(b, `"@odata.etag"`) || !strings.Contains(b, `"lastname":"Rep"`) {
		t.Fatalf("POST representation = %d %s", st, b)
	}

	// GET with $select and the etag.
	st, _, b = raw(t, srv, a.Name, a.Password, "GET", "/api/data/contacts("+id.String()+")?$select=firstname,lastname", nil, "")
	if st != 200 || !strings.Contains(b, `"firstname":"Ann"`) || strings.Contains(b, "emailaddress1") {
		t.Fatalf("GET $select = %d %s", st, b)
	}
	rec, err := a.Client.Get(context.Background(), "contact", id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Attrs["fullname"] != "Ann Smith" || rec.Version == 0 || rec.Attrs["birthdate"] != time.Date(1980, 2, 29, 0, 0, 0, 0, time.UTC) {
		t.Errorf("Get = %+v", rec)
	}

	// PATCH touches only named attributes; stale If-Match gives 412.
	st, h, b = raw(t, srv, a.Name, a.Password, "PATCH", "/api/data/contacts("+id.String()+")", map[string]string{"If-Match": crm.ETag(rec.Version)}, `{"jobtitle":"CTO"}`)
	if st != http.StatusNoContent {
		t.Fatalf("PATCH = %d %s", st, b)
	}
	st, _, b = raw(t, srv, a.Name, a.Password, "PATCH", "/api/data/contacts("+id.String()+")", map[string]string{"If-Match": crm.ETag(rec.Version)}, `{"jobtitle":"CEO"}`)
	if st != http.StatusPreconditionFailed || errCode(t, b) != "precondition_failed" {
		t.Errorf("PATCH stale If-Match = %d %s, want 412", st, b)
	}
	_, err = a.Client.Update(context.Background(), crm.Record{Entity: "contact", ID: id, Attrs: map[string]any{"jobtitle": "CEO"}}, &crmclient.WriteOptions{IfMatch: rec.Version})
	if !errors.Is(err, crm.ErrPreconditionFailed) {
		t.Errorf("client Update stale = %v, want ErrPreconditionFailed", err)
	}
	got, err := a.Client.Get(context.Background(), "contact", id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attrs["jobtitle"] != "CTO" || got.Attrs["firstname"] != "Ann" || got.Attrs["emailaddress1"] != "ann@example.com" || got.Version <= rec.Version {
		t.Errorf("after PATCH: %+v", got.Attrs)
	}

	// Query options and paging.
	for i := range 7 {
		_, err := a.Client.Create(context.Background(), crm.Record{Entity: "contact", Attrs: map[string]any{
			"lastname": "Page", "firstname": string(rune('a' + i)), "telephone1": "555",
		}}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	st, h, b = raw(t, srv, a.Name, a.Password, "GET", "/api/data/contacts?$filter=lastname%20eq%20'Page'&$orderby=firstname%20desc&$select=firstname", map[string]string{"Prefer": "odata.maxpagesize=3"}, "")
	if st != 200 || !strings.Contains(b, "@odata.nextLink") || h.Get("Preference-Applied") != "odata.maxpagesize=3" {
		t.Fatalf("paged query = %d %s", st, b)
	}
	var pages [][]crm.Record
	err = a.Client.QueryPages(context.Background(), "contact", crmclient.Query{Filter: "lastname eq 'Page' and telephone1 ne null", OrderBy: "firstname desc", PageSize: 3}, func(p []crm.Record) error {
		pages = append(pages, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 3 || len(pages[0]) != 3 || len(pages[2]) != 1 || pages[0][0].Attrs["firstname"] != "g" || pages[2][0].Attrs["firstname"] != "a" {
		t.Errorf("pages = %v", pages)
	}
	top, err := a.Client.QueryAll(context.Background(), "contact", crmclient.Query{Filter: "contains(lastname,'ag') or startswith(lastname,'Smi')", Top: 4, PageSize: 3})
	if err != nil || len(top) != 4 {
		t.Errorf("$top=4 over pages: %d records, %v", len(top), err)
	}

	// DELETE: 204, then 404.
	if st, _, b := raw(t, srv, a.Name, a.Password, "DELETE", "/api/data/contacts("+id.String()+")", nil, ""); st != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", st, b)
	}
	if st, _, b := raw(t, srv, a.Name, a.Password, "GET", "/api/data/contacts("+id.String()+")", nil, ""); st != 404 || errCode(t, b) != "not_found" {
		t.Errorf("GET deleted = %d %s", st, b)
	}
}

func TestAPI_Batch(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	c := srv.Alice.Client
	id1, id2 := crm.NewID(), crm.NewID()
	// A group whose second request fails commits nothing.
	resps, err := c.Batch(ctx, []crm.BatchRequest{
		{ID: "1", Method: "POST", URL: "/api/data/contacts", AtomicityGroup: "g1", Body: json.RawMessage(`{"contactid":"` + id1.String() + `","lastname":"One"}`)},
		{ID: "2", Method: "POST", URL: "contacts", AtomicityGroup: "g1", Body: json.RawMessage(`{"contactid":"` + id2.String() + `","firstname":"no lastname"}`)},
		{ID: "3", Method: "POST", URL: "contacts", Body: json.RawMessage(`{"lastname":"Outside"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resps) != 3 || resps[0].Status != http.StatusFailedDependency || resps[1].Status != 400 || resps[2].Status != 204 {
		t.Fatalf("responses = %+v", resps)
	}
	if !errors.Is(crmclient.PartError(resps[1]), crm.ErrRequired) {
		t.Errorf("part 2 error = %v, want ErrRequired", crmclient.PartError(resps[1]))
	}
	if _, err := c.Get(ctx, "contact", id1); !errors.Is(err, crm.ErrNotFound) {
		t.Errorf("record of the failed group exists: %v", err)
	}
	// A good group commits all.
	resps, err = c.Batch(ctx, []crm.BatchRequest{
		{ID: "a", Method: "POST", URL: "contacts", AtomicityGroup: "g", Body: json.RawMessage(`{"contactid":"` + id1.String() + `","lastname":"One"}`)},
		{ID: "b", Method: "PATCH", URL: "contacts(" + id1.String() + ")", AtomicityGroup: "g", Body: json.RawMessage(`{"firstname":"Uno"}`)},
		{ID: "c", Method: "GET", URL: "contacts(" + id1.String() + ")?$select=firstname"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resps[0].Status != 204 || resps[1].Status != 204 || resps[2].Status != 200 || !strings.Contains(string(resps[2].Body), "Uno") {
		t.Errorf("responses = %+v", resps)
	}
}

// TestAPI_BatchUngroupedRequestsStandAlone: requests outside an atomicity
// group share one transaction but apply or fail each on its own. The
// refused request is undone whole, its record and what a plug-in wrote for
// it included, while its neighbours commit.
func TestAPI_BatchUngroupedRequestsStandAlone(t *testing.T) {
	ctx := context.Background()
	task, _ := crm.Builtin().Entity(crm.EntityTask)
	plugin := crmserver.PluginFunc(func(ctx context.Context, pc *crmserver.PluginContext) error {
		if pc.Stage != crmserver.PostOperation || pc.Entity.Name != crm.EntityContact || pc.Message != crmserver.MsgCreate {
			return nil
		}
		name, _ := pc.Target["lastname"].(string)
		if _, err := pc.Tx.Insert(ctx, task, crm.Record{Entity: crm.EntityTask, ID: crm.NewID(), Attrs: map[string]any{
			"subject": "side effect of " + name, "ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: pc.UserID}}}); err != nil {
			return err
		}
		if name == "Refused" {
			return errors.New("refused after writing")
		}
		return nil
	})
	srv := crmtest.Start(t, &crmtest.Options{Server: crmserver.Options{Plugins: []crmserver.Plugin{plugin}}})
	c := srv.Alice.Client
	ids := []crm.ID{crm.NewID(), crm.NewID(), crm.NewID()}
	var reqs []crm.BatchRequest
	for i, name := range []string{"Before", "Refused", "After"} {
		reqs = append(reqs, crm.BatchRequest{ID: name, Method: "POST", URL: "contacts",
			Body: json.RawMessage(`{"contactid":"` + ids[i].String() + `","lastname":"` + name + `"}`)})
	}
	resps, err := c.Batch(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	if len(resps) != 3 || resps[0].Status != 204 || resps[1].Status != 400 || resps[2].Status != 204 {
		t.Fatalf("responses = %+v", resps)
	}
	for i, want := range []bool{true, false, true} {
		_, err := c.Get(ctx, "contact", ids[i])
		if got := err == nil; got != want || (err != nil && !errors.Is(err, crm.ErrNotFound)) {
			t.Errorf("contact %s exists = %v (%v), want %v", reqs[i].ID, got, err, want)
		}
	}
	tasks, err := c.QueryAll(ctx, "task", crmclient.Query{Filter: "startswith(subject,'side effect of')"})
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, tk := range tasks {
		subjects = append(subjects, tk.Attrs["subject"].(string))
	}
	sort.Strings(subjects)
	if strings.Join(subjects, "|") != "side effect of After|side effect of Before" {
		t.Errorf("plug-in writes kept = %q, want those of Before and After only", subjects)
	}
}

func TestAPI_BusinessLogic(t *testing.T) {
	var seen []crm.CallerOrigin
	plugin := crmserver.PluginFunc(func(ctx context.Context, pc *crmserver.PluginContext) error {
		if pc.Stage == crmserver.PreOperation && pc.Entity.Name == crm.EntityContact && pc.Message == crmserver.MsgCreate {
			seen = append(seen, pc.CallerOrigin)
			if pc.Target["lastname"] == "Forbidden" {
				return errors.New("no Forbiddens")
			}
		}
		return nil
	})
	srv := crmtest.Start(t, &crmtest.Options{Server: crmserver.Options{
		Plugins:   []crmserver.Plugin{plugin},
		Workflows: []crmserver.Workflow{crmserver.FollowUpTaskWorkflow{}},
	}})
	ctx := context.Background()
	a := srv.Alice

	// Required fields.
	if st, _, b := raw(t, srv, a.Name, a.Password, "POST", "/api/data/contacts", nil, `{"firstname":"x"}`); st != 400 || errCode(t, b) != "required_attribute_missing" {
		t.Errorf("missing lastname = %d %s", st, b)
	}
	// Plug-in sees CallerOrigin with the queued time, and can refuse.
	queued := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c, err := a.Client.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Dup", "emailaddress1": "dup@example.com"}},
		&crmclient.WriteOptions{CallerOrigin: crm.CallerOrigin{Kind: "Offline", QueuedAt: queued}})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0].Kind != "Offline" || !seen[0].QueuedAt.Equal(queued) {
		t.Errorf("plug-in saw %+v", seen)
	}
	if st, _, b := raw(t, srv, a.Name, a.Password, "POST", "/api/data/contacts", nil, `{"lastname":"Forbidden"}`); st != 400 {
		t.Errorf("plug-in refusal = %d %s", st, b)
	}
	// Workflow: a follow-up task regarding the new contact.
	tasks, err := a.Client.QueryAll(ctx, "task", crmclient.Query{Filter: "regardingobjectid eq " + c.ID.String()})
	if err != nil || len(tasks) != 1 || tasks[0].Attrs["subject"] != "Follow up with Dup" {
		t.Fatalf("follow-up tasks = %v, %v", tasks, err)
	}
	// Duplicate detection, case-insensitive, names the duplicate, unless suppressed.
	st, _, b := raw(t, srv, a.Name, a.Password, "POST", "/api/data/contacts", nil, `{"lastname":"Other","emailaddress2":"DUP@example.com"}`)
	if st != 409 || errCode(t, b) != "duplicate_record" || !strings.Contains(b, c.ID.String()) {
		t.Errorf("duplicate = %d %s", st, b)
	}
	_, err = a.Client.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Other", "emailaddress2": "dup@example.com"}}, nil)
	var ae *crmclient.APIError
	if !errors.As(err, &ae) || !errors.Is(err, crm.ErrDuplicate) || len(ae.Duplicates) != 1 || ae.Duplicates[0].ID != c.ID {
		t.Errorf("client duplicate error = %#v", err)
	}
	if _, err := a.Client.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Other", "emailaddress2": "dup@example.com"}},
		&crmclient.WriteOptions{SuppressDuplicateDetection: true}); err != nil {
		t.Errorf("suppressed duplicate: %v", err)
	}
	// A completed task is read-only until reopened via statecode.
	task := tasks[0]
	if _, err := a.Client.Update(ctx, crm.Record{Entity: "task", ID: task.ID, Attrs: map[string]any{"statecode": int64(1)}}, nil); err != nil {
		t.Fatal(err)
	}
	done, _ := a.Client.Get(ctx, "task", task.ID)
	if done.Attrs["statuscode"] != int64(5) {
		t.Errorf("completed status = %v, want 5", done.Attrs["statuscode"])
	}
	if _, err := a.Client.Update(ctx, crm.Record{Entity: "task", ID: task.ID, Attrs: map[string]any{"subject": "x"}}, nil); !errors.Is(err, crm.ErrReadOnly) {
		t.Errorf("update of completed task = %v, want ErrReadOnly", err)
	}
	if _, err := a.Client.Update(ctx, crm.Record{Entity: "task", ID: task.ID, Attrs: map[string]any{"statecode": int64(0), "statuscode": int64(3)}}, nil); err != nil {
		t.Errorf("reopen: %v", err)
	}
	if _, err := a.Client.Update(ctx, crm.Record{Entity: "task", ID: task.ID, Attrs: map[string]any{"subject": "x"}}, nil); err != nil {
		t.Errorf("update after reopen: %v", err)
	}
	if st, _, b := raw(t, srv, a.Name, a.Password, "PATCH", "/api/data/tasks("+task.ID.String()+")", nil, `{"statecode":0,"statuscode":5}`); st != 400 {
		t.Errorf("status of another state = %d %s", st, b)
	}
	// Messages table.
	msgs, err := a.Client.Messages(ctx)
	if err != nil || len(msgs) < 10 {
		t.Fatalf("messages = %v, %v", msgs, err)
	}
}

func TestAPI_CustomAttribute(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	m0, err := srv.Alice.Client.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Alice.Client.AddAttribute(ctx, "contact", crm.Attribute{Name: "new_shoesize", Type: crm.TypeInteger}); !errors.Is(err, crm.ErrForbidden) {
		t.Errorf("salesperson customization = %v, want ErrForbidden", err)
	}
	v, err := srv.Admin.Client.AddAttribute(ctx, "contact", crm.Attribute{Name: "new_shoesize", Type: crm.TypeInteger})
	if err != nil || v != m0.Version+1 {
		t.Fatalf("AddAttribute = %d, %v; want version %d", v, err, m0.Version+1)
	}
	c, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Big", "new_shoesize": int64(47)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := srv.Alice.Client.QueryAll(ctx, "contact", crmclient.Query{Filter: "new_shoesize ge 40"})
	if err != nil || len(got) != 1 || got[0].ID != c.ID || got[0].Attrs["new_shoesize"] != int64(47) {
		t.Errorf("query on custom attribute = %v, %v", got, err)
	}
	// Sync carries it, under the new metadata version.
	sub, err := srv.Alice.Client.Subscribe(ctx, "laptop", crm.KindOffline)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Alice.Client.Prepare(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	b, err := srv.Alice.Client.NextBatch(ctx, sub.ID, "contact", 10)
	if err != nil || len(b.Upserts) != 1 {
		t.Fatalf("batch = %+v, %v", b, err)
	}
	if int64(b.Header.MetadataVersion) != v || b.Upserts[0].Attrs["new_shoesize"] != int64(47) {
		t.Errorf("batch metadata version %d (want %d), new_shoesize %v", b.Header.MetadataVersion, v, b.Upserts[0].Attrs["new_shoesize"])
	}
}

func TestAPI_OfflineMode(t *testing.T) {
	srv := crmtest.Start(t, &crmtest.Options{Server: crmserver.Options{Offline: true}})
	ctx := context.Background()
	a := srv.Alice
	if _, err := a.Client.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Offline"}}, nil); err != nil {
		t.Errorf("create offline: %v", err)
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/sync/subscriptions", `{"clientid":"x","kind":"offline"}`},
		{"POST", "/api/auth/token", ""},
	} {
		st, _, b := raw(t, srv, a.Name, a.Password, c.method, c.path, nil, c.body)
		if st != 400 || errCode(t, b) != "message_unavailable" {
			t.Errorf("%s %s offline = %d %s, want 400 message_unavailable", c.method, c.path, st, b)
		}
	}
	if _, err := srv.Admin.Client.AddAttribute(ctx, "contact", crm.Attribute{Name: "new_x", Type: crm.TypeInteger}); !errors.Is(err, crm.ErrUnavailable) {
		t.Errorf("customization offline = %v, want ErrUnavailable", err)
	}
}

// TestAPI_PagingExactUnderConcurrentChanges: pages continue after the last
// record sent, not at an offset, so a record deleted or added between
// pages makes no other record skipped or sent twice. Sort keys with NULLs
// and ties (broken by id), both directions, and a $select without the
// ordered attribute.
func TestAPI_PagingExactUnderConcurrentChanges(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	c := srv.Alice.Client
	jobs := []any{nil, "b", "a", nil, "c", "b", "a", "d", nil, "b", "e", "c", "a", nil, "d", "b", "e", "a", "c", nil, "b", "d", "a", "e", "c"}
	var ids []crm.ID
	for i, j := range jobs {
		r, err := c.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": fmt.Sprintf("keyset%02d", i), "jobtitle": j}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	for _, order := range []string{"jobtitle", "jobtitle desc", "jobtitle desc,lastname"} {
		t.Run(order, func(t *testing.T) {
			seen := map[crm.ID]int{}
			deleted := map[crm.ID]bool{}
			pages := 0
			q := crmclient.Query{Filter: "startswith(lastname,'keyset')", OrderBy: order, Select: []string{"lastname"}, PageSize: 4}
			err := c.QueryPages(ctx, "contact", q, func(p []crm.Record) error {
				pages++
				for _, r := range p {
					seen[r.ID]++
					if _, ok := r.Attrs["jobtitle"]; ok {
						t.Errorf("jobtitle sent though not selected")
					}
				}
				if pages == 1 {
					// Delete one record of this page and one not sent yet,
					// add one: an offset would now skip a record.
					for _, id := range []crm.ID{p[0].ID, ids[len(ids)-1]} {
						if !deleted[id] {
							if err := c.Delete(ctx, "contact", id, nil); err != nil {
								return err
							}
							deleted[id] = true
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				if deleted[id] && seen[id] > 1 || !deleted[id] && seen[id] != 1 {
					t.Errorf("%s sent %d times (deleted during paging: %v)", id, seen[id], deleted[id])
				}
			}
			// Put the deleted records back for the next order.
			for id := range deleted {
				i := slices.Index(ids, id)
				r, err := c.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": fmt.Sprintf("keyset%02d", i), "jobtitle": jobs[i]}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				ids[i] = r.ID
			}
		})
	}
	// $top counts across pages.
	top, err := c.QueryAll(ctx, "contact", crmclient.Query{Filter: "startswith(lastname,'keyset')", OrderBy: "jobtitle desc", Top: 10, PageSize: 4})
	if err != nil || len(top) != 10 {
		t.Errorf("$top=10 over pages of 4: %d records, %v", len(top), err)
	}
}

// TestAPI_LookupTargetMustExist: a lookup or owner naming a record that
// does not exist is refused on create and update, naming the attribute;
// one naming an existing record, or a record created earlier in the same
// atomicity group, is accepted.
func TestAPI_LookupTargetMustExist(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	c := srv.Alice.Client
	acct, err := c.Create(ctx, crm.Record{Entity: "account", Attrs: map[string]any{"name": "Lookup Ltd"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	nowhere := crm.Ref{Entity: crm.EntityAccount, ID: crm.NewID()}
	_, err = c.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Dangling", "parentcustomerid": nowhere}}, nil)
	var ae *crmclient.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "parentcustomerid") || !strings.Contains(ae.Message, nowhere.ID.String()) {
		t.Errorf("create with a dangling lookup = %v, want 400 naming parentcustomerid and the id", err)
	}
	_, err = c.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Nobody's",
		"ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: crm.NewID()}}}, nil)
	if err == nil {
		t.Errorf("create owned by a user that does not exist succeeded")
	}
	ok, err := c.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Linked",
		"parentcustomerid": crm.Ref{Entity: crm.EntityAccount, ID: acct.ID}}}, nil)
	if err != nil {
		t.Fatalf("create with an existing lookup: %v", err)
	}
	if _, err := c.Update(ctx, crm.Record{Entity: "contact", ID: ok.ID, Attrs: map[string]any{"parentcustomerid": nowhere}}, nil); err == nil {
		t.Errorf("update to a dangling lookup succeeded")
	}
	// Created earlier in the same group: visible to the check.
	aid := crm.NewID()
	resps, err := c.Batch(ctx, []crm.BatchRequest{
		{ID: "1", Method: "POST", URL: "accounts", AtomicityGroup: "g", Body: json.RawMessage(`{"accountid":"` + aid.String() + `","name":"Same Group"}`)},
		{ID: "2", Method: "POST", URL: "contacts", AtomicityGroup: "g", Body: json.RawMessage(`{"lastname":"Grouped","parentcustomerid":{"logicalname":"account","id":"` + aid.String() + `"}}`)},
	})
	if err != nil || resps[0].Status != 204 || resps[1].Status != 204 {
		t.Errorf("group creating an account and a contact under it = %+v, %v", resps, err)
	}
}

// TestAPI_BatchDependsOn: a request whose dependency (an earlier request or
// atomicity group) failed is not run and answers 424; one whose dependency
// succeeded runs; a dependency that is not earlier refuses the batch.
func TestAPI_BatchDependsOn(t *testing.T) {
	ctx := context.Background()
	srv := crmtest.Start(t, nil)
	c := srv.Alice.Client
	ids := map[string]crm.ID{}
	create := func(id, last, group string, deps ...string) crm.BatchRequest {
		ids[id] = crm.NewID()
		body := `{"contactid":"` + ids[id].String() + `"`
		if last != "" {
			body += `,"lastname":"` + last + `"`
		}
		return crm.BatchRequest{ID: id, Method: "POST", URL: "contacts", AtomicityGroup: group, DependsOn: deps, Body: json.RawMessage(body + "}")}
	}
	resps, err := c.Batch(ctx, []crm.BatchRequest{
		create("bad", "", ""),                 // no lastname: 400
		create("after-bad", "A", "", "bad"),   // not run
		create("good", "G", ""),               // runs
		create("after-good", "B", "", "good"), // runs
		create("g1", "", "grp"),               // the group fails
		create("after-grp", "C", "", "grp"),   // not run
		create("chain", "D", "", "after-bad"), // its dependency was not run: not run
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"bad": 400, "after-bad": 424, "good": 204, "after-good": 204, "g1": 400, "after-grp": 424, "chain": 424}
	for _, r := range resps {
		if r.Status != want[r.ID] {
			t.Errorf("%s: status %d, want %d (%s)", r.ID, r.Status, want[r.ID], r.Body)
		}
		_, gerr := c.Get(ctx, "contact", ids[r.ID])
		if exists := gerr == nil; exists != (want[r.ID] == 204) {
			t.Errorf("%s: record exists = %v", r.ID, exists)
		}
	}
	_, err = c.Batch(ctx, []crm.BatchRequest{create("first", "F", "", "later"), create("later", "L", "")})
	var ae *crmclient.APIError
	if !errors.As(err, &ae) || ae.Status != 400 {
		t.Errorf("dependency on a later request = %v, want 400", err)
	}
}
