package imapmail

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "imapmail test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// xoauthSession adds XOAUTH2 to an imapmemserver session; the valid token
// is "good-token".
type xoauthSession struct {
	imapserver.Session
	password string
}

func (s *xoauthSession) Namespace() (*imap.NamespaceData, error) {
	return s.Session.(imapserver.SessionIMAP4rev2).Namespace()
}

func (s *xoauthSession) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	return s.Session.(imapserver.SessionIMAP4rev2).Move(w, numSet, dest)
}

func (s *xoauthSession) AuthenticateMechanisms() []string { return []string{sasl.Plain, XOAuth2} }

func (s *xoauthSession) Authenticate(mech string) (sasl.Server, error) {
	if mech == sasl.Plain {
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			return s.Login(user, pass)
		}), nil
	}
	return &xoauthServer{sess: s}, nil
}

type xoauthServer struct {
	sess   *xoauthSession
	failed bool
}

func (x *xoauthServer) Next(resp []byte) ([]byte, bool, error) {
	if x.failed {
		return nil, true, errors.New("invalid token")
	}
	if resp == nil {
		return []byte{}, false, nil // ask for the initial response
	}
	parts := bytes.Split(resp, []byte{1})
	if len(parts) != 4 || !bytes.HasPrefix(parts[0], []byte("user=")) {
		return nil, true, errors.New("malformed XOAUTH2")
	}
	user := string(parts[0][len("user="):])
	if string(parts[1]) != "auth=Bearer good-token" {
		x.failed = true
		return []byte(`{"status":"401","schemes":"bearer"}`), false, nil
	}
	return nil, true, x.sess.Login(user, x.sess.password)
}

// newTLSMemServer starts imapmemserver with STARTTLS (plain listener) and
// implicit TLS (second listener), and XOAUTH2.
func newTLSMemServer(t *testing.T) (plainAddr, tlsAddr string, pool *x509.CertPool) {
	t.Helper()
	cert, pool := selfSigned(t)
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("alice", "mempw")
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &xoauthSession{Session: mem.NewSession(), password: "mempw"}, nil, nil
		},
		Caps:      imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}, imap.CapSASLIR: {}},
		TLSConfig: tlsConfig,
		Logger:    tLogger{t},
	})
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = srv.Serve(ln1); done <- struct{}{} }()
	go func() { _ = srv.Serve(tls.NewListener(ln2, tlsConfig)); done <- struct{}{} }()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
		<-done
	})
	return ln1.Addr().String(), ln2.Addr().String(), pool
}

func TestDial_TLS(t *testing.T) {
	plainAddr, tlsAddr, pool := newTLSMemServer(t)
	token := func(tok string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return tok, nil }
	}
	for _, tc := range []struct {
		name    string
		o       Options
		wantErr error
	}{
		{"implicit tls", Options{Addr: tlsAddr, Security: SecurityTLS, Password: "mempw"}, nil},
		{"starttls", Options{Addr: plainAddr, Security: SecurityStartTLS, Password: "mempw"}, nil},
		{"starttls, plain mechanism", Options{Addr: plainAddr, Security: SecurityStartTLS, Mechanism: MechPlain, Password: "mempw"}, nil},
		{"xoauth2", Options{Addr: tlsAddr, Token: token("good-token")}, nil},
		{"xoauth2, bad token", Options{Addr: tlsAddr, Token: token("expired")}, ErrAuth},
		{"untrusted certificate", Options{Addr: tlsAddr, Password: "mempw", TLSConfig: &tls.Config{}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.User, o.Logger = "alice", quietLogger()
			if o.TLSConfig == nil {
				o.TLSConfig = &tls.Config{RootCAs: pool}
			}
			c, err := Dial(testCtx(t), o)
			if tc.name == "untrusted certificate" {
				var ce *ConnError
				if !errors.As(err, &ce) {
					t.Fatalf("Dial with an untrusted certificate = %v, want a *ConnError", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Dial = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			defer c.Close()
			if _, err := c.Changes(testCtx(t), "INBOX", Cursor{}); err != nil {
				t.Fatalf("Changes over %s = %v", o.Security, err)
			}
		})
	}
}

type tLogger struct{ t *testing.T }

func (l tLogger) Printf(f string, a ...any) { l.t.Logf(f, a...) }
