package davext_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/pim"
	"github.com/pimbridge/pimbridge/pim/davext"
)

func TestClient_ContextPath(t *testing.T) {
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		endpoint string // path appended to the server URL
		want     string // path appended to the server URL
		wantErr  error
	}{
		{"301 Nextcloud style", func(w http.ResponseWriter, r *http.Request) {
			if r.Method != "PROPFIND" {
				t.Errorf("well-known asked with %s, want PROPFIND", r.Method)
			}
			http.Redirect(w, r, "/remote.php/dav/", http.StatusMovedPermanently)
		}, "", "/remote.php/dav/", nil},
		{"308 chain through another well-known", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/.well-known/carddav" {
				http.Redirect(w, r, "/x/.well-known/carddav", http.StatusPermanentRedirect)
				return
			}
			http.Redirect(w, r, "/dav/alice/", http.StatusFound)
		}, "/", "/dav/alice/", nil},
		{"404 means root", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "", "/", nil},
		{"endpoint with a path is used as given", func(w http.ResponseWriter, r *http.Request) {
			t.Errorf("unexpected request %s %s", r.Method, r.URL)
		}, "/dav/", "/dav/", nil},
		{"401", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no", http.StatusUnauthorized)
		}, "", "", pim.ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c := newClient(t, srv.URL+tt.endpoint, nil)
			got, err := c.ContextPath(t.Context(), "carddav")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ContextPath = %q, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != srv.URL+tt.want {
				t.Errorf("ContextPath = %q, %v; want %q", got, err, srv.URL+tt.want)
			}
		})
	}
}

func TestClient_Timeout(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newClient(t, srv.URL, &davext.Options{Timeout: 50 * time.Millisecond, MaxRetries: 1})
	start := time.Now()
	_, err := c.Get(t.Context(), "/x")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Get from a hanging server = %v, want a timeout", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Get took %v, want about 2 x 50ms", el)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2 (one retry of an idempotent GET)", n)
	}
}
