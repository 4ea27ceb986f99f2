package crmstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm/crmstore"
)

// TestAuthenticate_SameTimeForUnknownUser: a login with an unknown name
// costs a bcrypt comparison at the store's cost, like a wrong password for
// a real user, so the time does not tell which names exist.
func TestAuthenticate_SameTimeForUnknownUser(t *testing.T) {
	ctx := context.Background()
	st, err := crmstore.Open(ctx, dsnFor(t, t.TempDir()), &crmstore.Options{BcryptCost: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreateUser(ctx, "alice", "alice-secret-pw", "salesperson"); err != nil {
		t.Fatal(err)
	}
	median := func(name string) time.Duration {
		var ds []time.Duration
		for range 5 {
			start := time.Now()
			if _, err := st.Authenticate(ctx, name, "wrong-password"); err == nil {
				t.Fatal("wrong password accepted")
			}
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	median("nobody") // the dummy hash is made once, on first use
	unknown, wrong := median("nobody"), median("alice")
	t.Logf("median: unknown user %v, wrong password %v", unknown, wrong)
	if r := float64(unknown) / float64(wrong); r < 0.33 || r > 3 {
		t.Errorf("unknown user takes %v, wrong password %v: the time tells whether the name exists", unknown, wrong)
	}
}
