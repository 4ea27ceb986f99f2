package imapmail

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Security says how the connection is protected.
type Security int

const (
	// SecurityTLS is implicit TLS (port 993). It is the zero value.
	SecurityTLS Security = iota
	// SecurityStartTLS upgrades a plain connection with STARTTLS (port 143).
	SecurityStartTLS
	// SecurityNone is plain text; Dial allows it only to a loopback address.
	SecurityNone
)

func (s Security) String() string {
	switch s {
	case SecurityTLS:
		return "tls"
	case SecurityStartTLS:
		return "starttls"
	case SecurityNone:
		return "none"
	}
	return fmt.Sprintf("Security(%d)", int(s))
}

// ParseSecurity parses "tls", "starttls" or "none".
func ParseSecurity(s string) (Security, error) {
	switch strings.ToLower(s) {
	case "tls", "":
		return SecurityTLS, nil
	case "starttls":
		return SecurityStartTLS, nil
	case "none":
		return SecurityNone, nil
	}
	return 0, fmt.Errorf("imapmail: unknown security %q (want tls, starttls or none)", s)
}

// SASL mechanism names for Options.Mechanism.
const (
	MechPlain = "PLAIN"
	MechLogin = "LOGIN"
)

// Options configure a Client. Only Addr and User are required.
type Options struct {
	// Addr is "host:port".
	Addr string
	// Security defaults to implicit TLS.
	Security Security
	// TLSConfig is used for TLS and STARTTLS; nil means the defaults with
	// ServerName taken from Addr.
	TLSConfig *tls.Config

	// User is the login name.
	User string
	// Password is used by the LOGIN command and the PLAIN and LOGIN
	// mechanisms.
	Password string
	// Token returns an OAuth 2 access token for XOAUTH2; it is called on
	// every (re)connect, so it may refresh the token.
	Token func(ctx context.Context) (string, error)
	// Mechanism is "" (the LOGIN command, or XOAUTH2 when Token is set),
	// MechPlain, MechLogin or XOAuth2.
	Mechanism string

	// HeaderFields are the header fields Changes fetches (BODY.PEEK[HEADER.
	// FIELDS (...)]); nil means DefaultHeaderFields.
	HeaderFields []string

	// DialTimeout bounds dialing, TLS and login when the context has no
	// earlier deadline; zero means 30 s.
	DialTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between failed dials
	// (doubling from min to max, with jitter); zero means 200 ms and 1 min.
	ReconnectMin, ReconnectMax time.Duration
	// WatchPoll is how often Watch checks the mailboxes it does not IDLE on
	// (and, without IDLE, the first one too); zero means 1 min.
	WatchPoll time.Duration

	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
	// DebugWriter, if set, receives the raw protocol trace of the Client's
	// connections. It contains credentials (LOGIN, AUTHENTICATE) and mail:
	// never enable it in production logs.
	DebugWriter io.Writer
}

// DefaultHeaderFields are the header fields Changes fetches by default:
// enough to link a message to CRM (Message-ID, In-Reply-To, References) and
// to create the CRM e-mail's summary fields.
var DefaultHeaderFields = []string{
	"Message-ID", "In-Reply-To", "References", "Subject", "From", "Sender",
	"To", "Cc", "Bcc", "Reply-To", "Date", "Content-Type",
}

func (o *Options) validate() error {
	if o.Addr == "" {
		return fmt.Errorf("imapmail: options: Addr is empty")
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return fmt.Errorf("imapmail: options: Addr: %w", err)
	}
	if o.User == "" {
		return fmt.Errorf("imapmail: options: User is empty")
	}
	switch o.Security {
	case SecurityTLS, SecurityStartTLS:
	case SecurityNone:
		if !isLoopback(host) {
			return fmt.Errorf("imapmail: options: %s: %w", o.Addr, ErrInsecure)
		}
	default:
		return fmt.Errorf("imapmail: options: unknown security %v", o.Security)
	}
	switch strings.ToUpper(o.Mechanism) {
	case "", MechPlain, MechLogin:
	case XOAuth2:
		if o.Token == nil {
			return fmt.Errorf("imapmail: options: XOAUTH2 needs Token")
		}
	default:
		return fmt.Errorf("imapmail: options: unknown mechanism %q: %w", o.Mechanism, ErrUnsupported)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (o *Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

func durOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
