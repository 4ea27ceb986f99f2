package offline

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/internal/retry"
)

// TestUnavailable_FollowsStatusTable: a replay answer or CRM error keeps
// the client offline (ErrServerUnavailable) exactly for the statuses of the
// one table in internal/retry; 501, 505 and 507 are rejections.
func TestUnavailable_FollowsStatusTable(t *testing.T) {
	for code := 400; code <= 599; code++ {
		err := unavailable(fmt.Errorf("crmclient: post: %w", &crmclient.APIError{Status: code}))
		if got, want := errors.Is(err, ErrServerUnavailable), retry.TransientStatus(code); got != want {
			t.Errorf("unavailable(APIError %d) offline = %v, want %v", code, got, want)
		}
	}
}
