// Package obs is pimbridge's local observability endpoint: Prometheus
// metrics of sync cycles, items, errors and the offline queue, and a
// /healthz that reports the last cycle of each kind.
//
// It owns the metric names (pimbridge_*), which dashboards rely on. It
// imports no other pimbridge package; the daemon feeds it.
package obs

import (
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the registry and the health of the last cycles. The zero
// value is not usable; call New.
type Metrics struct {
	reg           *prometheus.Registry
	cycles        *prometheus.CounterVec
	cycleDuration *prometheus.HistogramVec
	items         *prometheus.CounterVec
	itemErrors    *prometheus.CounterVec
	queueLength   prometheus.Gauge
	lastSuccess   *prometheus.GaugeVec

	now func() time.Time

	mu   sync.Mutex
	last map[string]CycleStatus // by kind
}

// CycleStatus is the outcome of the last cycle of one kind.
type CycleStatus struct {
	Kind     string        `json:"kind"`
	OK       bool          `json:"ok"`
	Error    string        `json:"error,omitempty"`
	Finished time.Time     `json:"finished"`
	Duration time.Duration `json:"duration_ns"`
}

// New returns metrics registered on a fresh registry (with the Go and
// process collectors). now is the clock; nil means time.Now.
func New(now func() time.Time) *Metrics {
	if now == nil {
		now = time.Now
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		cycles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pimbridge_cycles_total", Help: "Sync cycles run, by kind (contacts, tasks, appointments, email, offline) and result (ok, error).",
		}, []string{"kind", "result"}),
		cycleDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pimbridge_cycle_duration_seconds", Help: "Duration of sync cycles, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 10),
		}, []string{"kind"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pimbridge_items_total", Help: "Items written, by side (crm, pim), action (create, update, delete, unlink) and entity.",
		}, []string{"side", "action", "entity"}),
		itemErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pimbridge_item_errors_total", Help: "Items set aside as sync errors, by entity.",
		}, []string{"entity"}),
		queueLength: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pimbridge_offline_queue_length", Help: "Requests waiting in the offline queue.",
		}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pimbridge_last_success_timestamp_seconds", Help: "Unix time of the last successful cycle, by kind.",
		}, []string{"kind"}),
		now:  now,
		last: map[string]CycleStatus{},
	}
	m.reg.MustRegister(m.cycles, m.cycleDuration, m.items, m.itemErrors, m.queueLength, m.lastSuccess,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// CycleDone records the end of one cycle of kind that took d; err is its
// failure, nil when it succeeded (item errors alone do not fail a cycle).
func (m *Metrics) CycleDone(kind string, d time.Duration, err error) {
	st := CycleStatus{Kind: kind, OK: err == nil, Finished: m.now(), Duration: d}
	result := "ok"
	if err != nil {
		result, st.Error = "error", err.Error()
	} else {
		m.lastSuccess.WithLabelValues(kind).Set(float64(st.Finished.UnixNano()) / 1e9)
	}
	m.cycles.WithLabelValues(kind, result).Inc()
	m.cycleDuration.WithLabelValues(kind).Observe(d.Seconds())
	m.mu.Lock()
	m.last[kind] = st
	m.mu.Unlock()
}

// AddItems counts n items written on side ("crm" or "pim") with action for
// entity.
func (m *Metrics) AddItems(side, action, entity string, n int) {
	if n > 0 {
		m.items.WithLabelValues(side, action, entity).Add(float64(n))
	}
}

// AddItemErrors counts n items of entity set aside as sync errors.
func (m *Metrics) AddItemErrors(entity string, n int) {
	if n > 0 {
		m.itemErrors.WithLabelValues(entity).Add(float64(n))
	}
}

// SetQueueLength sets the offline queue length.
func (m *Metrics) SetQueueLength(n int) { m.queueLength.Set(float64(n)) }

// Health returns the last cycle of each kind, sorted by kind, and whether
// all of them succeeded. With no cycle yet it is healthy (starting up).
func (m *Metrics) Health() ([]CycleStatus, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]CycleStatus, 0, len(m.last))
	ok := true
	for _, st := range m.last {
		out = append(out, st)
		ok = ok && st.OK
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out, ok
}

// Handler serves /metrics (Prometheus text format) and /healthz (JSON; 200
// when the last cycle of every kind succeeded, 503 otherwise). Bind it to
// loopback: it is unauthenticated and carries no secrets.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		cycles, ok := m.Health()
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(struct {
			OK     bool          `json:"ok"`
			Cycles []CycleStatus `json:"cycles"`
		}{ok, cycles})
	})
	return mux
}
