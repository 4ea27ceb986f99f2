package bridge

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/pim"
)

// dryCRM reads through to the server and writes nothing: creates and
// updates answer as the server would, deletes succeed, batches are never
// acknowledged.
type dryCRM struct{ CRM }

func (d *dryCRM) Create(ctx context.Context, r crm.Record, _ *crmclient.WriteOptions) (crm.Record, error) {
	if r.ID == (crm.ID{}) {
		r.ID = crm.NewID()
	}
	r.Version = 1
	return r, nil
}

func (d *dryCRM) Update(ctx context.Context, r crm.Record, opts *crmclient.WriteOptions) (crm.Record, error) {
	cur, err := d.CRM.Get(ctx, r.Entity, r.ID)
	if err != nil {
		return r, err
	}
	for k, v := range r.Attrs {
		cur.Attrs[k] = v
	}
	return cur, nil
}

func (d *dryCRM) Delete(context.Context, string, crm.ID, *crmclient.WriteOptions) error { return nil }

func (d *dryCRM) PostSync(_ context.Context, _ string, id uint64) (crm.PostSyncResult, error) {
	return crm.PostSyncResult{BatchID: id}, nil
}

func (d *dryCRM) ClaimPrimary(ctx context.Context, _ string) (crm.Primary, error) {
	return d.CRM.Primary(ctx)
}

// dryCollection reads through and writes nothing.
type dryCollection struct{ Collection }

func (d *dryCollection) Create(_ context.Context, name string, _ []byte) (pim.Ref, error) {
	return pim.Ref{Href: d.ObjectHref(name), ETag: `"dry-run"`}, nil
}

func (d *dryCollection) Update(context.Context, string, string, []byte) (string, error) {
	return `"dry-run"`, nil
}

func (d *dryCollection) Delete(context.Context, string, string) error { return nil }

// CopyCache copies the cache file at src (and its WAL) to dst, for a dry
// run that must not change the real cache. No bridge may be writing src.
func CopyCache(src, dst string) error {
	for _, suffix := range []string{"", "-wal"} {
		in, err := os.Open(src + suffix)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			in.Close()
			return err
		}
		out, err := os.OpenFile(dst+suffix, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			in.Close()
			return err
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *dryCRM) DeleteSubscription(context.Context, string) error { return nil }
