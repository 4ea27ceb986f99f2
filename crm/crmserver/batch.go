package crmserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/pimbridge/pimbridge/crm"
)

// maxBatchRequests bounds the parts of one $batch.
const maxBatchRequests = 1000

// maxBatchPageSize caps a page of query results inside a $batch (outside,
// Options.MaxPageSize, 5000 by default): a part's page is built in memory
// whole, and so is the run or group it belongs to, until it is written.
// Preference-Applied and @odata.nextLink tell the client, as for any page.
const maxBatchPageSize = 1000

// errGroupFailed marks the other members of a failed atomicity group.
var errGroupFailed = errors.New("another request of the atomicity group failed")

// batch runs an OData JSON batch. Requests run in order; the requests of one
// atomicityGroup (which must be adjacent) run in one transaction and commit
// or fail together: the failing request answers with its error, the others
// of the group with 424 batch_group_failed. Requests outside a group apply
// or fail each on its own (see batchRun). A request naming in dependsOn an
// earlier request or group that failed is not run (424). The batch itself
// answers 200.
//
// The answer is bounded and streamed: each unit's responses are written as
// soon as the unit is done, and once the response bodies written and held
// reach Options.MaxBatchResponseBytes, the remaining requests are not run
// and answer 413 batch_response_too_large (a GET whose answer would cross
// the limit is answered so instead of with its body). So a batch of
// thousands of GETs holds at most about the limit in memory, and the client
// sends the requests that were not run in another batch.
func (s *Server) batch(ctx context.Context, w http.ResponseWriter, p *Principal, body []byte, base string) {
	if err := s.messageAllowed(MsgExecuteBatch); err != nil {
		s.writeOp(w, s.errResp(ctx, err))
		return
	}
	in, err := s.parseBatch(body)
	if err != nil {
		s.writeOp(w, s.errResp(ctx, err))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	defer bw.Flush()
	bw.WriteString(`{"responses":[`)
	first := true
	emit := func(resps []crm.BatchResponse) {
		for _, r := range resps {
			if !first {
				bw.WriteByte(',')
			}
			first = false
			writePart(bw, r)
		}
	}
	s.runBatch(ctx, p, in, base, emit)
	bw.WriteString("]}")
}

// writePart writes one response of a batch. The body, already JSON made by
// the server, is copied as it is (json.Marshal would compact it into
// another copy, and a page of records is megabytes).
func writePart(w *bufio.Writer, r crm.BatchResponse) {
	id, _ := json.Marshal(r.ID)
	w.WriteString(`{"id":`)
	w.Write(id)
	w.WriteString(`,"status":`)
	w.WriteString(strconv.Itoa(r.Status))
	if len(r.Headers) > 0 {
		h, _ := json.Marshal(r.Headers)
		w.WriteString(`,"headers":`)
		w.Write(h)
	}
	if len(r.Body) > 0 {
		w.WriteString(`,"body":`)
		w.Write(r.Body)
	}
	w.WriteByte('}')
}

// parseBatch decodes and checks a $batch body.
func (s *Server) parseBatch(body []byte) ([]crm.BatchRequest, error) {
	var in struct {
		Requests []crm.BatchRequest `json:"requests"`
	}
	if err := strictJSON(body, &in); err != nil {
		return nil, err
	}
	if len(in.Requests) == 0 || len(in.Requests) > maxBatchRequests {
		return nil, fmt.Errorf("%w: a batch needs 1 to %d requests", crm.ErrInvalidArgument, maxBatchRequests)
	}
	seenGroup := map[string]bool{}
	ids := map[string]bool{}
	for i, r := range in.Requests {
		if r.ID == "" || ids[r.ID] {
			return nil, fmt.Errorf("%w: request %d needs a unique id", crm.ErrInvalidArgument, i)
		}
		for _, d := range r.DependsOn {
			if !ids[d] && (!seenGroup[d] || d == r.AtomicityGroup) {
				return nil, fmt.Errorf("%w: request %q depends on %q, which is no earlier request or atomicity group", crm.ErrInvalidArgument, r.ID, d)
			}
		}
		ids[r.ID] = true
		if g := r.AtomicityGroup; g != "" {
			if seenGroup[g] && in.Requests[i-1].AtomicityGroup != g {
				return nil, fmt.Errorf("%w: the requests of atomicity group %q must be adjacent", crm.ErrInvalidArgument, g)
			}
			seenGroup[g] = true
		}
	}
	return in.Requests, nil
}

// runBatch runs the checked requests unit by unit and hands each unit's
// responses to emit.
func (s *Server) runBatch(ctx context.Context, p *Principal, reqs []crm.BatchRequest, base string, emit func([]crm.BatchResponse)) {
	var used int64 // response body bytes so far
	limit := s.opts.MaxBatchResponseBytes
	tooLarge := func(r crm.BatchRequest) crm.BatchResponse {
		b, _ := json.Marshal(errorBody{Error: errorDetail{Code: "batch_response_too_large",
			Message: fmt.Sprintf("not run: the batch answer reached its limit of %d bytes; send request %q in another batch", limit, r.ID)}})
		return crm.BatchResponse{ID: r.ID, Status: http.StatusRequestEntityTooLarge, Headers: map[string]string{"Content-Type": "application/json"}, Body: b}
	}
	// failed holds the requests and atomicity groups that failed, for
	// dependsOn: a request whose dependency failed is not run and answers
	// 424 batch_dependency_failed (inside a group, the group fails).
	failed := map[string]bool{}
	part := func(tx Tx, r crm.BatchRequest) crm.BatchResponse {
		if used >= limit {
			failed[r.ID] = true
			return tooLarge(r)
		}
		for _, d := range r.DependsOn {
			if failed[d] {
				failed[r.ID] = true
				b, _ := json.Marshal(errorBody{Error: errorDetail{Code: "batch_dependency_failed",
					Message: fmt.Sprintf("not run: request %q depends on %q, which failed", r.ID, d)}})
				return crm.BatchResponse{ID: r.ID, Status: http.StatusFailedDependency, Headers: map[string]string{"Content-Type": "application/json"}, Body: b}
			}
		}
		resp := s.batchPart(ctx, p, tx, r, base)
		if n := int64(len(resp.Body)); used+n > limit && strings.EqualFold(r.Method, http.MethodGet) {
			// A read has no effect to report: drop its answer.
			used = limit
			resp = tooLarge(r)
		} else {
			used += n
		}
		if resp.Status >= 400 {
			failed[r.ID] = true
		}
		return resp
	}
	for i := 0; i < len(reqs); {
		// A unit is one atomicity group, or a run of adjacent requests
		// outside any group.
		g := reqs[i].AtomicityGroup
		j := i + 1
		for j < len(reqs) && reqs[j].AtomicityGroup == g {
			j++
		}
		unit := reqs[i:j]
		var resps []crm.BatchResponse
		switch {
		case g != "":
			resps = s.batchGroup(ctx, unit, part)
		case len(unit) == 1:
			resps = []crm.BatchResponse{part(nil, unit[0])}
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
		emit(resps)
		i = j
	}
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
func (s *Server) batchRun(ctx context.Context, run []crm.BatchRequest, part func(Tx, crm.BatchRequest) crm.BatchResponse) []crm.BatchResponse {
	resps := make([]crm.BatchResponse, len(run))
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
			resps[i] = crm.BatchResponse{ID: r.ID, Status: er.status, Headers: map[string]string{"Content-Type": "application/json"}, Body: er.body}
		}
	}
	return resps
}

func (s *Server) batchGroup(ctx context.Context, group []crm.BatchRequest, part func(Tx, crm.BatchRequest) crm.BatchResponse) []crm.BatchResponse {
	resps := make([]crm.BatchResponse, len(group))
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
			resps[i] = crm.BatchResponse{ID: r.ID, Status: er.status, Body: er.body}
		}
		return resps
	}
	gf, _ := json.Marshal(errorBody{Error: errorDetail{Code: "batch_group_failed",
		Message: fmt.Sprintf("not applied: request %q of atomicity group %q failed", group[failed].ID, group[failed].AtomicityGroup)}})
	for i, r := range group {
		if i != failed {
			resps[i] = crm.BatchResponse{ID: r.ID, Status: http.StatusFailedDependency, Headers: map[string]string{"Content-Type": "application/json"}, Body: gf}
		}
	}
	return resps
}

func (s *Server) batchPart(ctx context.Context, p *Principal, tx Tx, r crm.BatchRequest, base string) crm.BatchResponse {
	fail := func(err error) crm.BatchResponse {
		er := s.errResp(ctx, err)
		return crm.BatchResponse{ID: r.ID, Status: er.status, Headers: map[string]string{"Content-Type": "application/json"}, Body: er.body}
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
	resp := s.execute(ctx, p, tx, opRequest{method: strings.ToUpper(r.Method), path: path, query: u.Query(), header: h, body: body, base: base, maxPage: maxBatchPageSize})
	out := crm.BatchResponse{ID: r.ID, Status: resp.status, Body: resp.body}
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
