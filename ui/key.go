package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// KeyFile is the access key's file name in the state directory (0600).
const KeyFile = "ui.key"

// AddrFile is where the running daemon writes the address it serves the
// page on, for `pimbridge ui` (ui.listen may name port 0).
const AddrFile = "ui.addr"

// ErrBadKey: the key file holds something that is not a key.
var ErrBadKey = errors.New("ui: the key file does not hold a key (delete it to make a new one)")

// LoadOrCreateKey returns the access key kept in dir/ui.key, making a
// random one (32 bytes, hex) with mode 0600 when there is none.
func LoadOrCreateKey(dir string) (string, error) {
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k := strings.TrimSpace(string(b))
		if len(k) < 32 {
			return "", fmt.Errorf("%w: %s", ErrBadKey, path)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("ui: read key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("ui: key: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("ui: key: %w", err)
	}
	k := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process made it first
		return LoadOrCreateKey(dir)
	}
	if err != nil {
		return "", fmt.Errorf("ui: key: %w", err)
	}
	if _, err := f.WriteString(k + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("ui: key: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("ui: key: %w", err)
	}
	return k, nil
}

// URL is the address that signs a browser in: http://addr/?key=KEY.
func URL(addr, key string) string {
	return "http://" + addr + "/?key=" + url.QueryEscape(key)
}

// derive is a value derived from the key for one purpose (the cookie, the
// CSRF token), so that neither gives the key away.
func derive(key, purpose string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(purpose))
	return hex.EncodeToString(m.Sum(nil))
}

func equal(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }
