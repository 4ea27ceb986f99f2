package crmserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/crm/crmtest"
)

// tokenOf asks for a bearer token with the given Authorization header.
func tokenOf(t *testing.T, srv *crmtest.Server, user, pw, bearer string) (string, time.Time) {
	t.Helper()
	h := map[string]string{}
	if bearer != "" {
		h["Authorization"] = "Bearer " + bearer
	}
	st, _, b := raw(t, srv, user, pw, "POST", "/api/auth/token", h, "")
	if st != 200 {
		t.Fatalf("token = %d %s", st, b)
	}
	var v struct {
		Tok string `json:"access_token"`
		Exp string `json:"expires_on"`
	}
	if err := json.Unmarshal([]byte(b), &v); err != nil {
		t.Fatal(err)
	}
	exp, err := time.Parse(time.RFC3339, v.Exp)
	if err != nil {
		t.Fatal(err)
	}
	return v.Tok, exp
}

func whoami(t *testing.T, srv *crmtest.Server, user, pw, bearer string) int {
	t.Helper()
	h := map[string]string{}
	if bearer != "" {
		h["Authorization"] = "Bearer " + bearer
	}
	st, _, _ := raw(t, srv, user, pw, "GET", "/api/whoami", h, "")
	return st
}

// TestSecurity_RevocationDisableEndsSessions: an admin setting
// systemuser.isdisabled through the API ends the user's tokens and cached
// Basic logins at once; enabling again lets the password in, but not the
// old tokens.
func TestSecurity_RevocationDisableEndsSessions(t *testing.T) {
	srv := crmtest.Start(t, nil)
	tok, _ := tokenOf(t, srv, "alice", crmtest.AlicePassword, "")
	if st := whoami(t, srv, "alice", crmtest.AlicePassword, ""); st != 200 { // warms the Basic cache
		t.Fatalf("alice = %d", st)
	}
	path := "/api/data/systemusers(" + srv.Alice.ID.String() + ")"
	if st, _, b := raw(t, srv, "admin", crmtest.AdminPassword, "PATCH", path, nil, `{"isdisabled":true}`); st != 204 {
		t.Fatalf("disable = %d %s", st, b)
	}
	if st := whoami(t, srv, "", "", tok); st != 401 {
		t.Errorf("token of a disabled user = %d, want 401", st)
	}
	if st := whoami(t, srv, "alice", crmtest.AlicePassword, ""); st != 401 {
		t.Errorf("Basic of a disabled user = %d, want 401", st)
	}
	if st, _, b := raw(t, srv, "admin", crmtest.AdminPassword, "PATCH", path, nil, `{"isdisabled":false}`); st != 204 {
		t.Fatalf("enable = %d %s", st, b)
	}
	if st := whoami(t, srv, "alice", crmtest.AlicePassword, ""); st != 200 {
		t.Errorf("Basic after enabling = %d, want 200", st)
	}
	if st := whoami(t, srv, "", "", tok); st != 401 {
		t.Errorf("token from before disabling, after enabling = %d, want 401", st)
	}
}

// TestSecurity_RevocationPasswordChange: a new password ends the tokens
// and the cached Basic login of the old one.
func TestSecurity_RevocationPasswordChange(t *testing.T) {
	srv := crmtest.Start(t, nil)
	tok, _ := tokenOf(t, srv, "alice", crmtest.AlicePassword, "")
	if st := whoami(t, srv, "alice", crmtest.AlicePassword, ""); st != 200 {
		t.Fatalf("alice = %d", st)
	}
	if err := srv.Store.SetPassword(context.Background(), "alice", "alice-new-password"); err != nil {
		t.Fatal(err)
	}
	if st := whoami(t, srv, "alice", crmtest.AlicePassword, ""); st != 401 {
		t.Errorf("old password (cached) = %d, want 401", st)
	}
	if st := whoami(t, srv, "", "", tok); st != 401 {
		t.Errorf("token from before the change = %d, want 401", st)
	}
	if st := whoami(t, srv, "alice", "alice-new-password", ""); st != 200 {
		t.Errorf("new password = %d, want 200", st)
	}
}

// TestSecurity_RevocationTokenCannotOutliveItself: a token minted with a
// bearer token expires no later than that token, so a token cannot renew
// itself forever.
func TestSecurity_RevocationTokenCannotOutliveItself(t *testing.T) {
	srv := crmtest.Start(t, nil)
	tok, exp := tokenOf(t, srv, "alice", crmtest.AlicePassword, "")
	time.Sleep(1100 * time.Millisecond) // expiries have whole seconds
	tok2, exp2 := tokenOf(t, srv, "", "", tok)
	if exp2.After(exp) {
		t.Errorf("minted token expires %v, after its parent's %v", exp2, exp)
	}
	if st := whoami(t, srv, "", "", tok2); st != http.StatusOK {
		t.Errorf("minted token = %d", st)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
