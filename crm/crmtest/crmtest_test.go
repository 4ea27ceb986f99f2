package crmtest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// TestStart shows the intended use: start, act as the users, check.
func TestStart(t *testing.T) {
	srv := crmtest.Start(t, nil)
	ctx := context.Background()
	c, err := srv.Alice.Client.Create(ctx, crm.Record{Entity: "task", Attrs: map[string]any{"subject": "call Bob"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Bob.Client.Get(ctx, "task", c.ID); !errors.Is(err, crm.ErrNotFound) {
		t.Errorf("bob reads alice's task: %v", err)
	}
	if got, err := srv.Admin.Client.Get(ctx, "task", c.ID); err != nil || got.Attrs["subject"] != "call Bob" {
		t.Errorf("admin reads alice's task: %v %v", got, err)
	}
	if w, err := srv.Bob.Client.WhoAmI(ctx); err != nil || w.UserID != srv.Bob.ID {
		t.Errorf("WhoAmI = %+v, %v", w, err)
	}
}
