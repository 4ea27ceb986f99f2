package obs

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMetrics_Handler(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	m := New(func() time.Time { return now })
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	if code, body := get(t, srv, "/healthz"); code != 200 || !strings.Contains(body, `"ok":true`) {
		t.Errorf("healthz before any cycle = %d %s, want 200 ok", code, body)
	}

	m.CycleDone("contacts", 150*time.Millisecond, nil)
	m.AddItems("pim", "create", "contact", 3)
	m.AddItemErrors("contact", 1)
	m.SetQueueLength(7)
	code, body := get(t, srv, "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, want := range []string{
		`pimbridge_cycles_total{kind="contacts",result="ok"} 1`,
		`pimbridge_items_total{action="create",entity="contact",side="pim"} 3`,
		`pimbridge_item_errors_total{entity="contact"} 1`,
		`pimbridge_offline_queue_length 7`,
		`pimbridge_last_success_timestamp_seconds{kind="contacts"} 1.7955216e+09`,
		`pimbridge_cycle_duration_seconds_count{kind="contacts"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	m.CycleDone("appointments", time.Second, errors.New("caldav: 503 Service Unavailable"))
	code, body = get(t, srv, "/healthz")
	if code != http.StatusServiceUnavailable {
		t.Errorf("healthz after a failed cycle = %d, want 503", code)
	}
	var h struct {
		OK     bool
		Cycles []CycleStatus
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil || h.OK || len(h.Cycles) != 2 || h.Cycles[0].Kind != "appointments" || h.Cycles[0].Error == "" {
		t.Errorf("healthz body = %s (%v)", body, err)
	}

	m.CycleDone("appointments", time.Second, nil)
	if code, _ := get(t, srv, "/healthz"); code != 200 {
		t.Errorf("healthz after recovery = %d, want 200", code)
	}
}
