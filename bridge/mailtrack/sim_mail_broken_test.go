//go:build !race

package mailtrack

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/pim/imapmail"
)

// The invariants of the e-mail level fail when the rule they guard is
// broken on purpose, in a wrapper of the tracker's CRM or mailbox (no
// production change).

type brokenMailCRM struct {
	CRM
	create   func(ctx context.Context, r crm.Record, opts *crmclient.WriteOptions) (crm.Record, error)
	queryAll func(ctx context.Context, entity string, q crmclient.Query) ([]crm.Record, error)
}

func (b brokenMailCRM) Create(ctx context.Context, r crm.Record, opts *crmclient.WriteOptions) (crm.Record, error) {
	if b.create != nil && r.Entity == crm.EntityEmail {
		return b.create(ctx, r, opts)
	}
	return b.CRM.Create(ctx, r, opts)
}

func (b brokenMailCRM) QueryAll(ctx context.Context, entity string, q crmclient.Query) ([]crm.Record, error) {
	if b.queryAll != nil && entity == crm.EntityEmail {
		return b.queryAll(ctx, entity, q)
	}
	return b.CRM.QueryAll(ctx, entity, q)
}

type brokenMailbox struct {
	Mailbox
	changes func(ctx context.Context, mailbox string, cur imapmail.Cursor) (*imapmail.ChangeSet, error)
}

func (b brokenMailbox) Changes(ctx context.Context, mailbox string, cur imapmail.Cursor) (*imapmail.ChangeSet, error) {
	return b.changes(ctx, mailbox, cur)
}

func TestRandomizedMail_CatchesBrokenRule(t *testing.T) {
	cases := []struct {
		name    string
		inv     string
		wrapCRM func(CRM) CRM
		wrapMB  func(Mailbox) Mailbox
	}{
		// A CRM email gets a server-chosen id, not the one made from its
		// key, and a copy of a tracked message in another folder is not
		// looked up by its Message-ID: a copy or a lost reply makes a
		// second CRM email.
		{"EmailIDServerChosen", mailNoDup, func(c CRM) CRM {
			return brokenMailCRM{CRM: c,
				create: func(ctx context.Context, r crm.Record, opts *crmclient.WriteOptions) (crm.Record, error) {
					r.ID = crm.ID{}
					return c.Create(ctx, r, opts)
				},
				queryAll: func(ctx context.Context, entity string, q crmclient.Query) ([]crm.Record, error) {
					if strings.Contains(q.Filter, "messageid") {
						return nil, nil
					}
					return c.QueryAll(ctx, entity, q)
				}}
		}, nil},
		// The create of a CRM email is acknowledged and never sent.
		{"EmailCreateAcknowledgedNotWritten", mailOnce, func(c CRM) CRM {
			return brokenMailCRM{CRM: c, create: func(_ context.Context, r crm.Record, _ *crmclient.WriteOptions) (crm.Record, error) {
				return r, nil
			}}
		}, nil},
		// Every message is taken for one with the track keyword.
		{"EveryMessageTakenAsTracked", mailUntracked, nil, func(m Mailbox) Mailbox {
			return brokenMailbox{Mailbox: m, changes: func(ctx context.Context, mailbox string, cur imapmail.Cursor) (*imapmail.ChangeSet, error) {
				cs, err := m.Changes(ctx, mailbox, cur)
				if err == nil {
					for i := range cs.Messages {
						cs.Messages[i].Flags = append(cs.Messages[i].Flags, DefaultKeyword)
					}
				}
				return cs, err
			}}
		}},
		// The folder cursor is never used: every message is new again at
		// every cycle.
		{"CursorNeverAdvances", mailTerminates, nil, func(m Mailbox) Mailbox {
			return brokenMailbox{Mailbox: m, changes: func(ctx context.Context, mailbox string, _ imapmail.Cursor) (*imapmail.ChangeSet, error) {
				return m.Changes(ctx, mailbox, imapmail.Cursor{})
			}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 20; seed++ {
				var caught bool
				t.Run("", func(t *testing.T) {
					vs, _ := mailE2EWith(t, seed, c.wrapCRM, c.wrapMB)
					for _, v := range vs {
						if strings.HasPrefix(v, c.inv+":") {
							caught = true
							t.Logf("seed %d: caught: %s", seed, v)
						}
					}
				})
				if caught {
					return
				}
			}
			t.Errorf("%s: no run of seeds 1..20 broke %s", c.name, c.inv)
		})
	}
}

var portRE = regexp.MustCompile(`127\.0\.0\.1:\d+`)

// TestRandomizedMail_Deterministic: a seed twice gives the same user
// actions, faults, kills and violations.
func TestRandomizedMail_Deterministic(t *testing.T) {
	for _, seed := range []uint64{2, 7} {
		var runs [2]string
		for i := range runs {
			t.Run("", func(t *testing.T) {
				vs, r := mailE2E(t, seed)
				out := fmt.Sprintf("%s\nfaults %v kills %d cycles %d\nviolations %v", strings.Join(r.log, "\n"), r.faults, r.kills, r.cycles, vs)
				// Error texts carry the servers' ephemeral ports.
				runs[i] = portRE.ReplaceAllString(out, "127.0.0.1:PORT")
			})
		}
		if runs[0] != runs[1] {
			t.Errorf("seed %d: two runs differ:\n--- first\n%s\n--- second\n%s", seed, runs[0], runs[1])
		}
	}
}
