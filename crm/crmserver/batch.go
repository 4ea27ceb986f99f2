package crmserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/pimbridge/pimbridge/crm"
)

// BatchRequest is one part of an OData JSON batch.
type BatchRequest struct {
	ID             string            `json:"id"`
	Method         string            `json:"method"`
	URL            string            `json:"url"`
	Headers        map[string]string `json:"headers,omitempty"`
	Body           json.RawMessage   `json:"body,omitempty"`
	AtomicityGroup string            `json:"atomicityGroup,omitempty"`
	DependsOn      []string          `json:"dependsOn,omitempty"`
}

// BatchResponse is one part of the answer.
type BatchResponse struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// maxBatchRequests bounds the parts of one $batch.
const maxBatchRequests = 1000

// errGroupFailed marks the other members of a failed atomicity group.
var errGroupFailed = errors.New("another request of the atomicity group failed")

// batch runs an OData JSON batch. Requests run in order; the requests of one
// atomicityGroup (which must be adjacent) run in one transaction and commit
// or fail together: the failing request answers with its error, the others
// of the group with 424 batch_group_failed. Requests outside a group apply
// or fail each on its own (see batchRun). A request naming in dependsOn an
// earlier request or group that failed is not run (424). The batch itself
// answers 200.
func (s *Server) batch(ctx context.Context, p *Principal, body []byte, base string) opResponse {
	if err := s.messageAllowed(MsgExecuteBatch); err != nil {
		return s.errResp(ctx, err)
	}
	var in struct {
		Requests []BatchRequest `json:"requests"`
	}
	if err := strictJSON(body, &in); err != nil {
		return s.errResp(ctx, err)
	}
	if len(in.Requests) == 0 || len(in.Requests) > maxBatchRequests {
		return s.errResp(ctx, fmt.Errorf("%w: a batch needs 1 to %d requests", crm.ErrInvalidArgument, maxBatchRequests))
	}
	seenGroup := map[string]bool{}
	ids := map[string]bool{}
	for i, r := range in.Requests {
		if r.ID == "" || ids[r.ID] {
			return s.errResp(ctx, fmt.Errorf("%w: request %d needs a unique id", crm.ErrInvalidArgument, i))
		}
		for _, d := range r.DependsOn {
			if !ids[d] && (!seenGroup[d] || d == r.AtomicityGroup) {
				return s.errResp(ctx, fmt.Errorf("%w: request %q depends on %q, which is no earlier request or atomicity group", crm.ErrInvalidArgument, r.ID, d))
			}
		}
		ids[r.ID] = true
		if g := r.AtomicityGroup; g != "" {
			if seenGroup[g] && in.Requests[i-1].AtomicityGroup != g {
				return s.errResp(ctx, fmt.Errorf("%w: the requests of atomicity group %q must be adjacent", crm.ErrInvalidArgument, g))
			}
			seenGroup[g] = true
		}
	}
	// failed holds the requests and atomicity groups that failed, for
	// dependsOn: a request whose dependency failed is not run and answers
	// 424 batch_dependency_failed (inside a group, the group fails).
	failed := map[string]bool{}
	part := func(tx Tx, r BatchRequest) BatchResponse {
		for _, d := range r.DependsOn {
			if failed[d] {
				failed[r.ID] = true
				b, _ := json.Marshal(errorBody{Error: errorDetail{Code: "batch_dependency_failed",
					Message: fmt.Sprintf("not run: request %q depends on %q, which failed", r.ID, d)}})
				return BatchResponse{ID: r.ID, Status: http.StatusFailedDependency, Headers: map[string]string{"Content-Type": "application/json"}, Body: b}
			}
		}
		resp := s.batchPart(ctx, p, tx, r, base)
		if resp.Status >= 400 {
			failed[r.ID] = true
		}
		return resp
	}
	out := make([]BatchResponse, 0, len(in.Requests))
	for i := 0; i < len(in.Requests); {
		// A unit is one atomicity group, or a run of adjacent requests
		// outside any group.
		g := in.Requests[i].AtomicityGroup
		j := i + 1
		for j < len(in.Requests) && in.Requests[j].AtomicityGroup == g {
			j++
		}
		unit := in.Requests[i:j]
		var resps []BatchResponse
		switch {
		case g != "":
			resps = s.batchGroup(ctx, unit, part)
		case len(unit) == 1:
			resps = []BatchResponse{part(nil, unit[0])}
		default:
			resps = s.batchRun(ctx, unit, part)
		}
		// A failed commit or group fails requests after part saw them.
		for _, r := range resps {
			if r.Status >= 400 {
				failed[r.ID] = true
				if g != "" {
					failed[g] = true
				}
			}
		}
		out = append(out, resps...)
		i = j
	}
	b, _ := json.Marshal(map[string]any{"responses": out})
	return opResponse{status: http.StatusOK, body: b}
}

// errPartFailed makes Tx.Savepoint undo a request of a run that failed.
var errPartFailed = errors.New("batch request failed")

// batchRun runs adjacent requests outside any atomicity group. Each answers
// as if it ran alone: one that fails is undone (its savepoint is rolled
// back, plug-in writes included) and the others still apply. They share
// one transaction, so a run costs one commit rather than one per request
// (replaying an offline queue is runs of hundreds of creates). A lone
// request keeps its own transaction, as outside a $batch: the local API
// of the offline engine relies on that to queue exactly the writes that
// applied. If the commit itself fails, every request of the run answers
// with that error and none applied.
func (s *Server) batchRun(ctx context.Context, run []BatchRequest, part func(Tx, BatchRequest) BatchResponse) []BatchResponse {
	resps := make([]BatchResponse, len(run))
	err := s.store.Update(ctx, func(tx Tx) error {
		for i, r := range run {
			err := tx.Savepoint(ctx, func() error {
				resps[i] = part(tx, r)
				if resps[i].Status >= 400 {
					return errPartFailed
				}
				return nil
			})
			if err != nil && !errors.Is(err, errPartFailed) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		er := s.errResp(ctx, err)
		for i, r := range run {
			resps[i] = BatchResponse{ID: r.ID, Status: er.status, Headers: map[string]string{"Content-Type": "application/json"}, Body: er.body}
		}
	}
	return resps
}

func (s *Server) batchGroup(ctx context.Context, group []BatchRequest, part func(Tx, BatchRequest) BatchResponse) []BatchResponse {
	resps := make([]BatchResponse, len(group))
	failed := -1
	err := s.store.Update(ctx, func(tx Tx) error {
		for i, r := range group {
			resps[i] = part(tx, r)
			if resps[i].Status >= 400 {
				failed = i
				return errGroupFailed
			}
		}
		return nil
	})
	if err == nil {
		return resps
	}
	if failed < 0 { // the commit itself failed
		er := s.errResp(ctx, err)
		for i, r := range group {
			resps[i] = BatchResponse{ID: r.ID, Status: er.status, Body: er.body}
		}
		return resps
	}
	gf, _ := json.Marshal(errorBody{Error: errorDetail{Code: "batch_group_failed",
		Message: fmt.Sprintf("not applied: request %q of atomicity group %q failed", group[failed].ID, group[failed].AtomicityGroup)}})
	for i, r := range group {
		if i != failed {
			resps[i] = BatchResponse{ID: r.ID, Status: http.StatusFailedDependency, Headers: map[string]string{"Content-Type": "application/json"}, Body: gf}
		}
	}
	return resps
}

func (s *Server) batchPart(ctx context.Context, p *Principal, tx Tx, r BatchRequest, base string) BatchResponse {
	fail := func(err error) BatchResponse {
		er := s.errResp(ctx, err)
		return BatchResponse{ID: r.ID, Status: er.status, Headers: map[string]string{"Content-Type": "application/json"}, Body: er.body}
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return fail(fmt.Errorf("%w: bad url %q", crm.ErrInvalidArgument, r.URL))
	}
	path := u.Path
	if i := strings.Index(path, "/api/data/"); i >= 0 {
		path = path[i+len("/api/data/"):]
	} else {
		path = strings.TrimPrefix(path, "/")
	}
	if path == "$batch" {
		return fail(fmt.Errorf("%w: nested $batch", crm.ErrInvalidArgument))
	}
	h := http.Header{}
	for k, v := range r.Headers {
		h.Set(k, v)
	}
	var body []byte
	if len(r.Body) > 0 && string(r.Body) != "null" {
		body = r.Body
	}
	resp := s.execute(ctx, p, tx, opRequest{method: strings.ToUpper(r.Method), path: path, query: u.Query(), header: h, body: body, base: base})
	out := BatchResponse{ID: r.ID, Status: resp.status, Body: resp.body}
	if len(resp.header) > 0 || resp.body != nil {
		out.Headers = map[string]string{}
		for k := range resp.header {
			out.Headers[k] = resp.header.Get(k)
		}
		if resp.body != nil {
			out.Headers["Content-Type"] = "application/json"
		}
	}
	return out
}
