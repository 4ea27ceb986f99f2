package crmserver_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// Several server processes ("nodes") on one PostgreSQL database keep every
// guarantee of one. Each test starts two crmserver nodes, each
// with its own store, on one database; clients spread over both.

func twoNodes(t *testing.T) (*crmtest.Server, *crmtest.Server) {
	t.Helper()
	a := crmtest.Start(t, &crmtest.Options{Postgres: true})
	return a, a.StartNode(t, nil)
}

// TestMultiNode_DuplicateDetectionUnderConcurrentCreates: creates of
// contacts with one e-mail address, at once on both nodes, make exactly
// one record; every other create is refused as a duplicate.
func TestMultiNode_DuplicateDetectionUnderConcurrentCreates(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, dups := 0, 0
	var other []error
	for i := range n {
		c := a.Alice.Client
		if i%2 == 1 {
			c = b.Alice.Client
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{
				"lastname": fmt.Sprintf("Same %d", i), "emailaddress1": "same@example.com"}}, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created++
			case errors.Is(err, crm.ErrDuplicate):
				dups++
			default:
				other = append(other, err)
			}
		}()
	}
	wg.Wait()
	if created != 1 || dups != n-1 || len(other) > 0 {
		t.Errorf("created %d, duplicates %d, other errors %v; want 1, %d, none", created, dups, other, n-1)
	}
	all, err := a.Alice.Client.QueryAll(ctx, "contact", crmclient.Query{Filter: "emailaddress1 eq 'same@example.com'"})
	if err != nil || len(all) != 1 {
		t.Errorf("contacts with the address: %d, %v; want 1", len(all), err)
	}
}

// TestMultiNode_IdempotentCreateOnBothNodes: the same create with a
// client-chosen id, sent at once to both nodes (a retry through another
// node), makes one record, and both answers are success.
func TestMultiNode_IdempotentCreateOnBothNodes(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	for round := range 8 {
		id := crm.NewID()
		r := crm.Record{Entity: "task", ID: id, Attrs: map[string]any{"subject": fmt.Sprintf("retry %d", round)}}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, c := range []*crmclient.Client{a.Alice.Client, b.Alice.Client} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = c.Create(ctx, r, nil)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: create on node %d: %v", round, i+1, err)
			}
		}
	}
	all, err := b.Alice.Client.QueryAll(ctx, "task", crmclient.Query{})
	if err != nil || len(all) != 8 {
		t.Errorf("tasks = %d, %v; want 8", len(all), err)
	}
}

// TestMultiNode_BatchAckAcrossNodes: a sync client whose requests land on
// alternating nodes (prepare on one, the batch on the other, postsync on
// the first) gets every record once and, once acknowledged, never again.
func TestMultiNode_BatchAckAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	for i := range 30 {
		c := a.Alice.Client
		if i%2 == 1 {
			c = b.Alice.Client
		}
		if _, err := c.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": fmt.Sprintf("C%02d", i)}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := a.Alice.Client.Subscribe(ctx, "laptop", crm.KindOffline)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[crm.ID]int{}
	nodes := []*crmclient.Client{a.Alice.Client, b.Alice.Client}
	for pass := range 2 {
		if _, err := nodes[pass%2].Prepare(ctx, sub.ID); err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			bt, err := nodes[(pass+i+1)%2].NextBatch(ctx, sub.ID, "contact", 7)
			if err != nil {
				t.Fatal(err)
			}
			if bt.Header.Result == crm.BatchEmpty {
				break
			}
			for _, r := range bt.Upserts {
				seen[r.ID]++
			}
			if _, err := nodes[(pass+i)%2].PostSync(ctx, sub.ID, bt.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(seen) != 30 {
		t.Errorf("records sent: %d, want 30", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s sent %d times, want once", id, n)
		}
	}
}

// TestMultiNode_PrimaryFencing: a claim on one node fences the old
// primary's writes on the other.
func TestMultiNode_PrimaryFencing(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	old, err := a.Alice.Client.ClaimPrimary(ctx, "desktop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Alice.Client.ClaimPrimary(ctx, "laptop"); err != nil {
		t.Fatal(err)
	}
	_, err = a.Alice.Client.WithGeneration(old.Generation).Create(ctx, crm.Record{Entity: "task", Attrs: map[string]any{"subject": "stale"}}, nil)
	if !errors.Is(err, crm.ErrStalePrimary) {
		t.Errorf("write of the fenced primary = %v, want ErrStalePrimary", err)
	}
}

// TestMultiNode_TokenRevocation: a password change through one node ends
// the bearer tokens and Basic logins on the other at once.
func TestMultiNode_TokenRevocation(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	tok, _, err := b.Alice.Client.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Alice.Client.WithToken(tok).WhoAmI(ctx); err != nil {
		t.Fatalf("token before revocation: %v", err)
	}
	if _, err := b.Alice.Client.WhoAmI(ctx); err != nil { // warm node b's Basic-auth cache
		t.Fatal(err)
	}
	if err := a.Store.SetPassword(ctx, "alice", "another-secret-pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Alice.Client.WithToken(tok).WhoAmI(ctx); !errors.Is(err, crm.ErrUnauthenticated) {
		t.Errorf("token on the other node after the password change = %v, want ErrUnauthenticated", err)
	}
	if _, err := b.Alice.Client.WhoAmI(ctx); !errors.Is(err, crm.ErrUnauthenticated) {
		t.Errorf("old password on the other node = %v, want ErrUnauthenticated", err)
	}
}

// TestMultiNode_FeedWakesOtherNode: a change-feed wait on one node wakes
// within a second of a commit on the other.
func TestMultiNode_FeedWakesOtherNode(t *testing.T) {
	a, b := twoNodes(t)
	sub, cur := feedSub(t, b.Alice.Client)
	ch := waitAsync(b.Alice.Client, sub, cur, 20*time.Second)
	time.Sleep(300 * time.Millisecond)
	at := time.Now()
	if _, err := a.Alice.Client.Create(context.Background(), crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Remote"}}, nil); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil || !r.a.Changed || !slicesContains(r.a.Entities, "contact") {
		t.Fatalf("wait on node b = %+v, %v; want a contact change", r.a, r.err)
	}
	if d := r.at.Sub(at); d > 2*time.Second {
		t.Errorf("node b woke %v after node a's commit, want < 2s", d)
	}
	// Bob never hears of Alice's private task through either node.
	bsub, bcur := feedSub(t, b.Bob.Client)
	bch := waitAsync(b.Bob.Client, bsub, bcur, 1500*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	if _, err := a.Alice.Client.Create(context.Background(), crm.Record{Entity: "task", Attrs: map[string]any{"subject": "private"}}, nil); err != nil {
		t.Fatal(err)
	}
	if r := <-bch; r.err != nil || slicesContains(r.a.Entities, "task") {
		t.Errorf("bob's wait = %+v, %v; must not hear of alice's task", r.a, r.err)
	}
}

// TestMultiNode_CustomAttributeReachesOtherNode: an attribute an admin adds
// through one node is usable through the other.
func TestMultiNode_CustomAttributeReachesOtherNode(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	if _, err := a.Admin.Client.AddAttribute(ctx, "contact", crm.Attribute{Name: "new_tier", Type: crm.TypeString, MaxLength: 20}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, _ := b.Store.Metadata(ctx)
		if e, _ := m.Entity("contact"); e != nil && e.Attr("new_tier") != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node b never learned of new_tier")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := b.Alice.Client.Create(ctx, crm.Record{Entity: "contact", Attrs: map[string]any{"lastname": "Tiered", "new_tier": "gold"}}, nil); err != nil {
		t.Errorf("create with the new attribute on node b: %v", err)
	}
}

var _ = crm.KindOffline

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
