package crmstore_test

import (
	"testing"

	"github.com/pimbridge/pimbridge/crm/crmstore"
)

// TestRedact_MasksPostgresPassword: a --db URL is logged without its
// password; a file path is kept.
func TestRedact_MasksPostgresPassword(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/var/lib/crm.db", "/var/lib/crm.db"},
		{"postgres://crm:s3cret@db:5432/crm?sslmode=require", "postgres://crm:xxxxx@db:5432/crm?sslmode=require"},
		{"postgresql://crm@db/crm?password=s3cret", "postgresql://crm@db/crm?password=xxxxx"},
	} {
		if got := crmstore.Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
