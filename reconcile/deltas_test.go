package reconcile

import "testing"

// TestDeltas has one row per way a pair can be observed; each names the
// rule that puts it in its cell.
func TestDeltas(t *testing.T) {
	base := Fields{"subject": `"Call"`, "description": `"Old"`}
	edited := Fields{"subject": `"Call"`, "description": `"New"`}
	tests := []struct {
		name string
		o    Observation
		want Delta
	}{
		{"base/unchanged", Observation{HasBase: true, Base: base, PIMBase: base, CRMExists: true, CRM: base, PIMExists: true, Tracked: true, PIM: base},
			Delta{Cell: Cell{HasBase: true}, Base: base, CRM: base, PIM: base}},
		{"base/crm-edit", Observation{HasBase: true, Base: base, PIMBase: base, CRMExists: true, CRM: edited, PIMExists: true, Tracked: true, PIM: base},
			Delta{Cell: Cell{HasBase: true, CRM: Modified}, Base: base, CRM: edited, PIM: base}},
		{"base/pim-edit", Observation{HasBase: true, Base: base, PIMBase: base, CRMExists: true, CRM: base, PIMExists: true, Tracked: true, PIM: edited},
			Delta{Cell: Cell{HasBase: true, PIM: Modified}, Base: base, CRM: base, PIM: edited}},
		// A value the PIM format cannot hold (PIMBase differs from Base) is
		// not a PIM edit as long as the object still holds what the last
		// sync wrote.
		{"base/pim-format-loss-is-not-an-edit", Observation{HasBase: true, Base: base, PIMBase: Fields{"subject": `"Call"`}, CRMExists: true, CRM: base, PIMExists: true, Tracked: true, PIM: Fields{"subject": `"Call"`}},
			Delta{Cell: Cell{HasBase: true}, Base: base, CRM: base, PIM: base}},
		// The object holds the value as the PIM format wrote it (rounded,
		// trimmed): unchanged since the last sync, so not an edit.
		{"base/pim-value-as-written-is-not-an-edit", Observation{HasBase: true, Base: base, PIMBase: Fields{"subject": `"Call"`, "description": `"Old "`}, CRMExists: true, CRM: base, PIMExists: true, Tracked: true, PIM: Fields{"subject": `"Call"`, "description": `"Old "`}},
			Delta{Cell: Cell{HasBase: true}, Base: base, CRM: base, PIM: base}},
		{"base/pim-deleted", Observation{HasBase: true, Base: base, CRMExists: true, CRM: base},
			Delta{Cell: Cell{HasBase: true, PIM: Deleted}, PIMEvent: PIMDeleted, Base: base, CRM: base}},
		{"base/pim-untracked", Observation{HasBase: true, Base: base, PIMBase: base, CRMExists: true, CRM: base, PIMExists: true, PIM: base},
			Delta{Cell: Cell{HasBase: true, PIM: Deleted}, PIMEvent: PIMUntracked, Base: base, CRM: base, PIM: base}},
		{"base/crm-tombstone", Observation{HasBase: true, Base: base, PIMBase: base, PIMExists: true, Tracked: true, PIM: base, CRMReport: CRMReportDeleted},
			Delta{Cell: Cell{HasBase: true, CRM: Deleted}, CRMEvent: CRMDeleted, Base: base, PIM: base}},
		// Only a tombstone for a record that is gone is a CRM deletion.
		{"base/delete-row-but-readable-left-filter", Observation{HasBase: true, Base: base, PIMBase: base, CRMExists: true, CRM: base, PIMExists: true, Tracked: true, PIM: base, CRMReport: CRMReportDeleted},
			Delta{Cell: Cell{HasBase: true, CRM: Deleted}, CRMEvent: LeftFilter, Base: base, CRM: base, PIM: base}},
		{"base/left-filter-row", Observation{HasBase: true, Base: base, PIMBase: base, CRMExists: true, CRM: base, PIMExists: true, Tracked: true, PIM: base, CRMReport: CRMReportLeftFilter},
			Delta{Cell: Cell{HasBase: true, CRM: Deleted}, CRMEvent: LeftFilter, Base: base, CRM: base, PIM: base}},
		{"base/unreadable-no-tombstone-left-filter", Observation{HasBase: true, Base: base, PIMBase: base, PIMExists: true, Tracked: true, PIM: base},
			Delta{Cell: Cell{HasBase: true, CRM: Deleted}, CRMEvent: LeftFilter, Base: base, PIM: base}},
		{"nobase/lost-create-reply-then-pim-deleted", Observation{CRMExists: true, CRM: base, PIMDeletionReported: true},
			Delta{Cell: Cell{HasBase: true, PIM: Deleted}, PIMEvent: PIMDeleted, Base: base, CRM: base}},
		{"nobase/lost-create-reply-pim-deleted-crm-left", Observation{CRMExists: true, CRM: base, PIMDeletionReported: true, CRMReport: CRMReportLeftFilter},
			Delta{Cell: Cell{HasBase: true, CRM: Deleted, PIM: Deleted}, CRMEvent: LeftFilter, PIMEvent: PIMDeleted, Base: base, CRM: base}},
		{"nobase/unreadable-record-unknown-origin", Observation{PIMExists: true, Tracked: true, PIM: edited},
			Delta{Cell: Cell{HasBase: true, CRM: Deleted}, CRMEvent: LeftFilter, Base: edited, PIM: edited, PIMStandsForRecord: true, UnknownOrigin: true}},
		{"nobase/unreadable-record-tombstone", Observation{PIMExists: true, Tracked: true, PIM: edited, CRMReport: CRMReportDeleted},
			Delta{Cell: Cell{HasBase: true, CRM: Deleted}, CRMEvent: CRMDeleted, Base: edited, PIM: edited, PIMStandsForRecord: true}},
		{"nobase/tracked-from-pim-new-in-crm-pending", Observation{PIMExists: true, Tracked: true, PIM: edited, TrackedFromPIM: true},
			Delta{Cell: Cell{PIM: New}, PIM: edited}},
		{"nobase/new-in-crm", Observation{CRMExists: true, CRM: base},
			Delta{Cell: Cell{CRM: New}, CRM: base}},
		{"nobase/new-in-crm-left-filter", Observation{CRMExists: true, CRM: base, CRMReport: CRMReportLeftFilter},
			Delta{CRM: base}},
		{"nobase/untracked-pim-object", Observation{PIMExists: true, PIM: edited, TrackedFromPIM: true},
			Delta{PIM: edited}},
		// Re-linking: a PIM value that is what the record itself would be
		// written as is not a PIM edit; a different one is.
		{"nobase/relink-generated-is-not-an-edit", Observation{CRMExists: true, CRM: base, PIMExists: true, Tracked: true,
			PIM: Fields{"subject": `"Call"`, "description": `"New"`, "prioritycode": "1"}, Generated: Fields{"subject": `"Call"`, "description": `"Old"`, "prioritycode": "1"}},
			Delta{Cell: Cell{CRM: New, PIM: New}, CRM: base, PIM: Fields{"subject": `"Call"`, "description": `"New"`}}},
		{"nobase/relink-without-generated", Observation{CRMExists: true, CRM: base, PIMExists: true, Tracked: true, PIM: edited},
			Delta{Cell: Cell{CRM: New, PIM: New}, CRM: base, PIM: edited}},
		{"nobase/relink-left-filter-ignores-generated", Observation{CRMExists: true, CRM: base, PIMExists: true, Tracked: true, PIM: edited, Generated: edited, CRMReport: CRMReportLeftFilter},
			Delta{Cell: Cell{PIM: New}, CRM: base, PIM: edited}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Deltas(tc.o)
			if got.Cell != tc.want.Cell || got.CRMEvent != tc.want.CRMEvent || got.PIMEvent != tc.want.PIMEvent ||
				got.PIMStandsForRecord != tc.want.PIMStandsForRecord || got.UnknownOrigin != tc.want.UnknownOrigin {
				t.Errorf("Deltas = cell %s events %d/%d stands-for-record %v unknown-origin %v\nwant cell %s events %d/%d stands-for-record %v unknown-origin %v",
					got.Cell, got.CRMEvent, got.PIMEvent, got.PIMStandsForRecord, got.UnknownOrigin,
					tc.want.Cell, tc.want.CRMEvent, tc.want.PIMEvent, tc.want.PIMStandsForRecord, tc.want.UnknownOrigin)
			}
			for _, f := range []struct {
				name      string
				got, want Fields
			}{{"Base", got.Base, tc.want.Base}, {"CRM", got.CRM, tc.want.CRM}, {"PIM", got.PIM, tc.want.PIM}} {
				if !f.got.Equal(f.want) {
					t.Errorf("Deltas %s = %v, want %v", f.name, f.got, f.want)
				}
			}
		})
	}
}
