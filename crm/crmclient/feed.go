package crmclient

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// WaitChanges long-polls the subscription's change feed: it returns at once
// when a change in the subscription's scope committed after cursor, else
// after wait (0: the server's 25 s) with Changed false. Pass the answer's
// Cursor to the next call; an empty cursor returns the current one at
// once. The client's HTTP timeout (60 s by default) must exceed wait.
func (c *Client) WaitChanges(ctx context.Context, subID, cursor string, wait time.Duration) (crm.FeedAnswer, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	var a crm.FeedAnswer
	_, err := c.call(ctx, http.MethodGet, "/api/sync/subscriptions/"+url.PathEscape(subID)+"/changes?"+q.Encode(), nil, nil, &a)
	return a, err
}
