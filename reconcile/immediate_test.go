package reconcile

import "testing"

// TestWhenApplied has one row per cell of the immediate-sync table.
func TestWhenApplied(t *testing.T) {
	type row struct {
		act                 UserAction
		mailP, mailS, draft Timing
		nonMailP, nonMailS  Timing
	}
	rows := []row{
		{ActTrack, Immediately, Immediately, OnSend, Immediately, LeftToPrimary},
		{ActUpdate, Immediately, Immediately, OnSend, Immediately, LeftToPrimary},
		{ActUntrack, Immediately, Immediately, NotApplicable, Immediately, LeftToPrimary},
		{ActDelete, AtNextCycle, AtNextCycle, NotApplicable, AtNextCycle, LeftToPrimary},
		{ActSetRegarding, Immediately, Immediately, NotApplicable, Immediately, LeftToPrimary},
	}
	for _, r := range rows {
		for _, c := range []struct {
			class   ItemClass
			primary bool
			want    Timing
		}{
			{ClassMail, true, r.mailP}, {ClassMail, false, r.mailS},
			{ClassDraft, true, r.draft}, {ClassDraft, false, r.draft},
			{ClassNonEmail, true, r.nonMailP}, {ClassNonEmail, false, r.nonMailS},
		} {
			name := r.act.String() + "/" + [...]string{"", "mail", "draft", "nonmail"}[c.class]
			if c.primary {
				name += "/primary"
			} else {
				name += "/secondary"
			}
			t.Run(name, func(t *testing.T) {
				if got := WhenApplied(r.act, c.class, c.primary); got != c.want {
					t.Fatalf("WhenApplied(%v, %d, %v) = %v, want %v", r.act, c.class, c.primary, got, c.want)
				}
			})
		}
	}
	if got := WhenApplied(UserAction(99), ClassMail, true); got != NotApplicable {
		t.Errorf("unknown action = %v, want n/a", got)
	}
}
