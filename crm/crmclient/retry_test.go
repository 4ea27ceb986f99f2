package crmclient_test

import (
	"testing"

	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/internal/retry"
)

// TestAPIError_RetryableFollowsTable: the CRM client retries exactly the
// statuses of the one table in internal/retry (501, 505 and 507 included).
func TestAPIError_RetryableFollowsTable(t *testing.T) {
	for code := 100; code <= 599; code++ {
		if got, want := (&crmclient.APIError{Status: code}).Retryable(), retry.TransientStatus(code); got != want {
			t.Errorf("APIError{Status: %d}.Retryable() = %v, want %v", code, got, want)
		}
	}
}
