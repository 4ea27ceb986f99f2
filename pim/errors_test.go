package pim

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestStatusError_Unwrap(t *testing.T) {
	tests := []struct {
		name      string
		code      int
		body      string
		want      error
		retryable bool
	}{
		{"412", 412, "", ErrPreconditionFailed, false},
		{"404", 404, "", ErrNotFound, false},
		{"410", 410, "", ErrNotFound, false},
		{"403", 403, "<D:error><D:need-privileges/></D:error>", ErrForbidden, false},
		{"401", 401, "", ErrUnauthorized, false},
		{"409 uid", 409, `<D:error xmlns:C="urn:ietf:params:xml:ns:carddav"><C:no-uid-conflict><D:href>/a/b.vcf</D:href></C:no-uid-conflict></D:error>`, ErrUIDConflict, false},
		{"403 sync token", 403, `<D:error><D:valid-sync-token/></D:error>`, ErrTokenExpired, false},
		{"409 sync token", 409, `<error xmlns="DAV:"><valid-sync-token/></error>`, ErrTokenExpired, false},
		{"429", 429, "", nil, true},
		{"503", 503, "", nil, true},
		{"500", 500, "", nil, true},
		{"408", 408, "", nil, true},
		{"507", 507, "", nil, false},
		{"400", 400, "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error = fmt.Errorf("davext: put: %w", &StatusError{Method: "PUT", URL: "/x", Code: tt.code, Body: tt.body})
			for _, s := range []error{ErrPreconditionFailed, ErrNotFound, ErrForbidden, ErrUnauthorized, ErrUIDConflict, ErrTokenExpired} {
				if got := errors.Is(err, s); got != (s == tt.want) {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", err, s, got, s == tt.want)
				}
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Retryable() != tt.retryable {
				t.Errorf("Retryable() for %d = %v, want %v", tt.code, se != nil && se.Retryable(), tt.retryable)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{now.Add(10 * time.Second).Format(timeFormat), 10 * time.Second},
		{now.Add(-10 * time.Second).Format(timeFormat), 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := ParseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

const timeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"
