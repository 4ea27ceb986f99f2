package imapmail

import (
	"errors"
	"fmt"
)

var (
	// ErrNoMailbox means the mailbox does not exist on the server.
	ErrNoMailbox = errors.New("no such mailbox")
	// ErrNotFound means no message has the given UID in the mailbox.
	ErrNotFound = errors.New("message not found")
	// ErrUIDValidity means the mailbox's UIDVALIDITY is not the one the
	// caller gave: its UIDs name other messages now; resync the mailbox.
	ErrUIDValidity = errors.New("UIDVALIDITY changed")
	// ErrInvalidKeyword means a keyword is not an IMAP atom (or is a system
	// flag); sending it would break the connection.
	ErrInvalidKeyword = errors.New("invalid keyword")
	// ErrUnsupported means the server lacks a capability the call needs
	// (custom keywords, MOVE/UIDPLUS, IDLE...).
	ErrUnsupported = errors.New("not supported by the server")
	// ErrAuth means the server refused the credentials. It is fatal for the
	// account: retrying will not help.
	ErrAuth = errors.New("authentication failed")
	// ErrInsecure means plain-text IMAP was asked for a non-loopback
	// address.
	ErrInsecure = errors.New("plain-text IMAP is only allowed on loopback")
	// ErrClosed means the Client was closed.
	ErrClosed = errors.New("client closed")
)

// ConnError is a failure of the connection (dial, TLS, I/O, a response the
// library could not parse). The Client has dropped the connection and will
// dial again, with backoff, on the next call. It is retryable.
type ConnError struct {
	Err error
}

func (e *ConnError) Error() string   { return "connection: " + e.Err.Error() }
func (e *ConnError) Unwrap() error   { return e.Err }
func (e *ConnError) Retryable() bool { return true }

// wrap gives err the "imapmail: op: " prefix.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("imapmail: %s: %w", op, err)
}
