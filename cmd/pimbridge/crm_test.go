package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/internal/realserver"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestCRM_ServeUsersRoles runs `crm user add`, `crm role grant` and
// `crm serve` in-process, creates and reads a contact over HTTP, and checks
// that no password reaches the log.
func TestCRM_ServeUsersRoles(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "crm.db")
	ctx := context.Background()
	adminPW := "first-Admin-Password"
	pwFile := filepath.Join(dir, "adminpw")
	if err := os.WriteFile(pwFile, []byte(adminPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	userPW := "carol-Password-42"
	// The database does not exist yet: user add creates it.
	if err := run(ctx, []string{"crm", "user", "add", "carol", "--role", "salesperson", "--password-stdin", "--db", db, "--bcrypt-cost", "4"},
		strings.NewReader(userPW+"\n"), &out, &errb); err != nil {
		t.Fatalf("user add: %v (%s)", err, errb.String())
	}
	if err := run(ctx, []string{"crm", "user", "add", "dave", "--role", "salesperson", "--db", db}, strings.NewReader("x\n"), &out, &errb); exitCode(io.Discard, err) != exitUsage {
		t.Errorf("user add without --password-stdin: %v", err)
	}
	for _, args := range [][]string{
		{"crm", "role", "create", "viewer", "--db", db},
		{"crm", "role", "grant", "viewer", "--entity", "contact", "--access", "read", "--scope", "all", "--db", db},
		{"crm", "role", "grant", "viewer", "SyncToOutlook", "--db", db},
		{"crm", "role", "revoke", "salesperson", "GoOffline", "--db", db},
	} {
		if err := run(ctx, args, nil, &out, &errb); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	out.Reset()
	if err := run(ctx, []string{"crm", "role", "list", "--db", db}, nil, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"viewer"`) || !strings.Contains(out.String(), `"read": "all"`) {
		t.Errorf("role list = %s", out.String())
	}
	if err := run(ctx, []string{"crm", "role", "grant", "viewer", "Fly", "--db", db}, nil, &out, &errb); exitCode(io.Discard, err) != exitUsage {
		t.Errorf("unknown privilege: %v", err)
	}

	port := realserver.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	sctx, cancel := context.WithCancel(ctx)
	logs := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(sctx, []string{"crm", "serve", "--db", db, "--listen", addr, "--admin-password-file", pwFile, "--bcrypt-cost", "4"}, nil, io.Discard, logs)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		l := logs.String()
		for _, s := range []string{adminPW, userPW, "wrong-Password-1"} {
			if strings.Contains(l, s) {
				t.Errorf("log contains password %q", s)
			}
		}
	}()
	if err := realserver.WaitPort(port, 60*time.Second); err != nil {
		t.Fatalf("server did not start: %v\n%s", err, logs.String())
	}
	do := func(user, pw, method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.SetBasicAuth(user, pw)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, b := do("carol", userPW, "POST", "/api/data/contacts", `{"lastname":"Served"}`); st != 204 {
		t.Fatalf("create = %d %s", st, b)
	}
	if st, b := do("admin", adminPW, "GET", "/api/data/contacts?$select=lastname", ""); st != 200 || !strings.Contains(b, "Served") {
		t.Errorf("admin read = %d %s", st, b)
	}
	if st, _ := do("carol", "wrong-Password-1", "GET", "/api/whoami", ""); st != 401 {
		t.Errorf("wrong password = %d", st)
	}
	// salesperson lost GoOffline above.
	if st, b := do("carol", userPW, "POST", "/api/sync/subscriptions", `{"clientid":"x","kind":"offline"}`); st != 403 {
		t.Errorf("offline without GoOffline = %d %s", st, b)
	}
}

// TestCRM_ServeFirstStart checks that the first start prints a generated
// admin password once, outside the log lines, and that it works.
func TestCRM_ServeFirstStart(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	port := realserver.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"crm", "serve", "--listen", addr, "--bcrypt-cost", "4"}, nil, io.Discard, logs)
	}()
	if err := realserver.WaitPort(port, 60*time.Second); err != nil {
		cancel()
		<-done
		t.Fatalf("server did not start: %v\n%s", err, logs.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var pw string
	for _, line := range strings.Split(logs.String(), "\n") {
		if p, ok := strings.CutPrefix(line, "Created user admin with password "); ok {
			pw = strings.Fields(p)[0]
		}
	}
	if len(pw) < 16 {
		t.Fatalf("no generated password printed:\n%s", logs.String())
	}
	if strings.Count(logs.String(), pw) != 1 {
		t.Errorf("password appears more than once")
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("XDG_DATA_HOME"), "pimbridge", "crm.db")); err != nil {
		t.Errorf("default database: %v", err)
	}
}

// TestCRM_ServeTLS serves HTTPS with a self-signed certificate.
func TestCRM_ServeTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile, pwFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "pw")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	os.WriteFile(pwFile, []byte("tls-Admin-Password"), 0o600)
	port := realserver.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"crm", "serve", "--db", filepath.Join(dir, "crm.db"), "--listen", addr,
			"--tls-cert", certFile, "--tls-key", keyFile, "--admin-password-file", pwFile, "--bcrypt-cost", "4"}, nil, io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	if err := realserver.WaitPort(port, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", "https://"+addr+"/api/whoami", nil)
	req.SetBasicAuth("admin", "tls-Admin-Password")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("whoami over TLS = %d", resp.StatusCode)
	}
	if err := run(context.Background(), []string{"crm", "serve", "--tls-cert", certFile}, nil, io.Discard, io.Discard); exitCode(io.Discard, err) != exitUsage {
		t.Errorf("--tls-cert without --tls-key: %v", err)
	}
}
