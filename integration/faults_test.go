package integration

import (
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// resetProxy is a TCP proxy on 127.0.0.1 that, while faults are on, resets a
// share of connections (RST) after a random number of bytes.
type resetProxy struct {
	ln     net.Listener
	target string
	on     atomic.Bool
	resets atomic.Int64
	mu     sync.Mutex
	rng    *rand.Rand
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newResetProxy(t *testing.T, target string) *resetProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &resetProxy{ln: ln, target: target, rng: rand.New(rand.NewPCG(1, 2)), conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *resetProxy) addr() string { return p.ln.Addr().String() }

func (p *resetProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.handle(c) }()
	}
}

func (p *resetProxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *resetProxy) handle(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer u.Close()
	p.track(c, true)
	p.track(u, true)
	defer p.track(c, false)
	defer p.track(u, false)
	// While faults are on, every connection is reset after a random
	// budget of response bytes, so resets land in the middle of a cycle
	// on kept-alive connections too.
	limit := int64(-1)
	p.mu.Lock()
	if p.on.Load() {
		limit = 2000 + p.rng.Int64N(150_000)
	}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(u, c); done <- struct{}{} }()
	go func() {
		if limit >= 0 {
			io.CopyN(c, u, limit)
			p.resets.Add(1)
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST
			}
		} else {
			io.Copy(c, u)
		}
		done <- struct{}{}
	}()
	<-done
}

// flaky answers a share of requests with 500 or 429 while on.
type flaky struct {
	next   http.Handler
	on     atomic.Bool
	n      atomic.Int64
	served atomic.Int64
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.on.Load() {
		switch f.n.Add(1) % 40 {
		case 0:
			f.served.Add(1)
			http.Error(w, "injected", http.StatusInternalServerError)
			return
		case 20:
			f.served.Add(1)
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
	}
	f.next.ServeHTTP(w, r)
}

// A TCP proxy that resets connections and
// answers 500s and 429s mid-cycle, on the DAV and the CRM side: after the
// faults stop, a normal run converges with zero lost edits and zero
// duplicates.
func TestFaults_ProxyResets500s429s(t *testing.T) {
	env := fastDAV(t)
	// Put the DAV server behind the 500/429 injector and the reset proxy.
	u, _ := url.Parse(env.URL)
	fl := &flaky{next: httputilProxy(u)}
	inj := httptest.NewServer(fl)
	t.Cleanup(inj.Close)
	davProxy := newResetProxy(t, strings.TrimPrefix(inj.URL, "http://"))
	env.URL = "http://" + davProxy.addr()
	h := newHarness(t, env.fresh(t, "faults"))
	crmURL, _ := url.Parse(h.CRM.URL)
	crmProxy := newResetProxy(t, crmURL.Host)
	h.CRM.URL = "http://" + crmProxy.addr()

	n := faultItems()
	w := h.seedTwoWay(n)
	c := h.cli("desktop", "")
	on := func(b bool) { fl.on.Store(b); davProxy.on.Store(b); crmProxy.on.Store(b) }
	on(true)
	for range 3 {
		start := time.Now()
		_, e, code := c.run("sync") // fails or half-succeeds; nothing may be lost
		t.Logf("faulty run: exit %d in %v: %.300s", code, time.Since(start), e)
	}
	on(false)
	if out, errOut, code := c.run("sync"); code != 0 {
		t.Fatalf("normal run: exit %d\n%s\n%s", code, out, errOut)
	}
	w.check(n)
	w.edit(20)
	on(true)
	for range 3 {
		start := time.Now()
		_, e, code := c.run("sync")
		t.Logf("faulty run: exit %d in %v: %.200s", code, time.Since(start), e)
	}
	on(false)
	start := time.Now()
	if out, errOut, code := c.run("sync"); code != 0 {
		t.Fatalf("normal run: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("normal run in %v", time.Since(start))
	w.check(n + 40)
	t.Logf("faults injected: %d HTTP 500/429, %d DAV resets, %d CRM resets", fl.served.Load(), davProxy.resets.Load(), crmProxy.resets.Load())
	if fl.served.Load() == 0 || davProxy.resets.Load()+crmProxy.resets.Load() == 0 {
		t.Error("no faults were injected")
	}
}

// httputilProxy forwards requests to u (a reverse proxy).
func httputilProxy(u *url.URL) http.Handler { return httputil.NewSingleHostReverseProxy(u) }
