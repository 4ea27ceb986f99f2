package crmserver

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/pimbridge/pimbridge/crm"
)

// Guards of the data API that keep it from answering more than asked
// or leaking what it should not: unsupported query options and taken ids.

// supportedOptions are the system query options the API implements.
var supportedOptions = []string{"$select", "$filter", "$orderby", "$top", "$skiptoken"}

// checkQueryOptions refuses system query options the API does not
// implement ($skip, $count, $expand, $apply, unknown ones) with 400 naming
// the option, as Dataverse does, instead of ignoring them and answering
// something else than was asked.
func checkQueryOptions(q url.Values) error {
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if strings.HasPrefix(k, "$") && !slices.Contains(supportedOptions, k) {
			return fmt.Errorf("%w: query option %s is not supported (supported: %s)", crm.ErrInvalidArgument, k, strings.Join(supportedOptions, ", "))
		}
	}
	return nil
}

// createTaken decides a create that names its id when the id is taken.
// The rules, the same for every caller:
//   - the id of a live record: the exact repeat of the create that made it
//     (same body) is the idempotent 204, but only for a caller who can read
//     the record; anything else answers 409 "<entity>(<id>) exists", with
//     nothing about who owns it or what it holds;
//   - the id of a deleted record is not used again: 409 "... was deleted",
//     also for the repeat of the create that made it (a replay after the
//     deletion must not bring the record back).
//
// done is false when the id is free.
func (s *Server) createTaken(ctx context.Context, p *Principal, t Tx, e *crm.Entity, id crm.ID, hash, base string) (opResponse, bool, error) {
	old, hashed, err := t.CreateHash(ctx, e, id)
	if err != nil {
		return opResponse{}, true, err
	}
	exists, err := t.Exists(ctx, e, id)
	if err != nil {
		return opResponse{}, true, err
	}
	if exists {
		if hashed && old == hash {
			rec, err := t.Get(ctx, e, id)
			if err != nil {
				return opResponse{}, true, err
			}
			if canSee(p, e, rec) {
				return opResponse{status: http.StatusNoContent, header: entityIDHeader(base, e, id)}, true, nil
			}
		}
		return opResponse{}, true, fmt.Errorf("%w: %s(%s) exists", crm.ErrConflict, e.Name, id)
	}
	deleted := hashed
	if dt, ok := t.(deletedTx); ok && !deleted {
		if deleted, err = dt.Deleted(ctx, e, id); err != nil {
			return opResponse{}, true, err
		}
	}
	if deleted {
		return opResponse{}, true, fmt.Errorf("%w: %s(%s) was deleted; the id of a deleted record is not used again", crm.ErrConflict, e.Name, id)
	}
	return opResponse{}, false, nil
}

// deletedTx is implemented by stores that keep tombstones (crmstore does).
type deletedTx interface {
	// Deleted reports whether a record with the id existed and was deleted.
	Deleted(ctx context.Context, e *crm.Entity, id crm.ID) (bool, error)
}
