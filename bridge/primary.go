package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/idmap"
)

// settingGeneration keeps the fencing generation this bridge claimed.
const settingGeneration = "primary.generation"

// ClaimPrimary makes this bridge the user's synchronizing (primary) client
// and remembers the new fencing generation: from then on another bridge
// that was primary is refused by the server (crm.ErrStalePrimary).
func (b *Bridge) ClaimPrimary(ctx context.Context) (crm.Primary, error) {
	p, err := b.opts.CRM.ClaimPrimary(ctx, b.opts.ClientID)
	if err != nil {
		return p, fmt.Errorf("bridge: claim primary: %w", classifyFatal(err))
	}
	err = b.opts.Cache.Tx(ctx, func(tx *idmap.Tx) error {
		return tx.SetSetting(ctx, settingGeneration, strconv.FormatInt(p.Generation, 10))
	})
	if err != nil {
		return p, fmt.Errorf("bridge: claim primary: %w", err)
	}
	b.log.Info("bridge: claimed the primary role", "client", b.opts.ClientID, "generation", p.Generation)
	return p, nil
}

// Role reports whether this bridge is the user's primary client, and the
// current primary.
func (b *Bridge) Role(ctx context.Context) (primary bool, p crm.Primary, err error) {
	p, err = b.opts.CRM.Primary(ctx)
	if err != nil {
		return false, p, fmt.Errorf("bridge: primary: %w", classifyFatal(err))
	}
	gen, _ := b.storedGeneration(ctx)
	return p.ClientID == b.opts.ClientID && p.Generation == gen, p, nil
}

func (b *Bridge) storedGeneration(ctx context.Context) (int64, error) {
	s, err := b.opts.Cache.Setting(ctx, settingGeneration)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(s, 10, 64)
}

// role returns the CRM client the cycle uses and whether this bridge is the
// primary. A user without any primary gets this bridge as primary (the
// first client installed, as in the Outlook client); a bridge whose client
// id is the primary's but whose cache lost the generation claims again.
func (b *Bridge) role(ctx context.Context) (CRM, bool, error) {
	primary, p, err := b.Role(ctx)
	if err != nil {
		return nil, false, err
	}
	if !primary && (p.ClientID == "" || p.ClientID == b.opts.ClientID) {
		if p, err = b.ClaimPrimary(ctx); err != nil {
			return nil, false, err
		}
		primary = true
	}
	if !primary {
		return b.opts.CRM, false, nil
	}
	if b.opts.Fenced == nil {
		return b.opts.CRM, true, nil
	}
	return b.opts.Fenced(p.Generation), true, nil
}

// classifyFatal wraps the errors no retry fixes in *FatalError.
func classifyFatal(err error) error {
	switch {
	case errors.Is(err, crm.ErrStalePrimary):
		return &FatalError{Err: fmt.Errorf("%w (%v)", ErrNotPrimary, err)}
	case errors.Is(err, crm.ErrUnauthenticated):
		return &FatalError{Err: err}
	}
	return err
}
