// One test per row and direction of the deletion table
// (docs/sync-rules.md, Deletions).

package reconcile

import "testing"

type ruleCase struct {
	entity string
	event  Event
	facts  Facts
	want   Action
}

var ruleCases = map[string]ruleCase{
	"ContactDeletedOnPIM_NotDeletedInCRM":                             {"contact", PIMDeleted, Facts{UserIsOwner: true}, MarkDeletedLocally},
	"ContactDeletedOnPIM_NotOwner_NotDeletedInCRM":                    {"contact", PIMDeleted, Facts{UntrackDeletesInCRM: true}, MarkDeletedLocally},
	"ContactUntrackedOnPIM_SettingOn_DeletedInCRM":                    {"contact", PIMUntracked, Facts{UserIsOwner: true, UntrackDeletesInCRM: true}, DeleteInCRM},
	"ContactUntrackedOnPIM_SettingOff_NotDeletedInCRM":                {"contact", PIMUntracked, Facts{UserIsOwner: true}, Unlink},
	"ContactDeletedInCRM_NotOwner_DeletedOnPIM":                       {"contact", CRMDeleted, Facts{}, DeleteOnPIM},
	"ContactDeletedInCRM_Owner_KeptOnPIMUnlinked":                     {"contact", CRMDeleted, Facts{UserIsOwner: true}, Unlink},
	"ContactLeftFilter_ReassignedToOtherOwner_DeletedOnPIM":           {"contact", LeftFilter, Facts{}, DeleteOnPIM},
	"ContactLeftFilter_ReassignedButTrackedFromPIM_KeptOnPIMUnlinked": {"contact", LeftFilter, Facts{TrackedFromPIM: true}, Unlink},
	"ContactLeftFilter_StillOwner_KeptOnPIMUnlinked":                  {"contact", LeftFilter, Facts{UserIsOwner: true}, Unlink},
	"AppointmentDeletedOnPIM_OpenFutureOwner_DeletedInCRM":            {"appointment", PIMDeleted, Facts{State: StateOpen, StartInFuture: true, UserIsOwner: true}, DeleteInCRM},
	"AppointmentDeletedOnPIM_ScheduledFutureOrganizer_DeletedInCRM":   {"appointment", PIMDeleted, Facts{State: StateScheduled, StartInFuture: true, UserIsOrganizer: true}, DeleteInCRM},
	"AppointmentDeletedOnPIM_PastStart_NotDeletedInCRM":               {"appointment", PIMDeleted, Facts{State: StateOpen, UserIsOwner: true, UserIsOrganizer: true}, Unlink},
	"AppointmentDeletedOnPIM_Completed_NotDeletedInCRM":               {"appointment", PIMDeleted, Facts{State: StateCompleted, StartInFuture: true, UserIsOwner: true}, Unlink},
	"AppointmentDeletedOnPIM_Canceled_NotDeletedInCRM":                {"appointment", PIMDeleted, Facts{State: StateCanceled, StartInFuture: true, UserIsOwner: true}, Unlink},
	"AppointmentDeletedOnPIM_NotOwnerNorOrganizer_NotDeletedInCRM":    {"appointment", PIMDeleted, Facts{State: StateScheduled, StartInFuture: true}, Unlink},
	"AppointmentUntrackedOnPIM_OpenFutureOrganizer_DeletedInCRM":      {"appointment", PIMUntracked, Facts{State: StateOpen, StartInFuture: true, UserIsOrganizer: true}, DeleteInCRM},
	"AppointmentUntrackedOnPIM_PastStart_NotDeletedInCRM":             {"appointment", PIMUntracked, Facts{State: StateScheduled, UserIsOwner: true}, Unlink},
	"AppointmentUntrackedOnPIM_NotOwnerNorOrganizer_NotDeletedInCRM":  {"appointment", PIMUntracked, Facts{State: StateOpen, StartInFuture: true, UntrackDeletesInCRM: true}, Unlink},
	"AppointmentUntrackedOnPIM_Completed_NotDeletedInCRM":             {"appointment", PIMUntracked, Facts{State: StateCompleted, StartInFuture: true, UserIsOwner: true}, Unlink},
	"AppointmentDeletedInCRM_FutureStart_DeletedOnPIM":                {"appointment", CRMDeleted, Facts{StartInFuture: true}, DeleteOnPIM},
	"AppointmentDeletedInCRM_PastStart_KeptOnPIMUnlinked":             {"appointment", CRMDeleted, Facts{UserIsOwner: true, State: StateCompleted}, Unlink},
	"AppointmentLeftFilter_FutureStart_DeletedOnPIM":                  {"appointment", LeftFilter, Facts{StartInFuture: true}, DeleteOnPIM},
	"AppointmentLeftFilter_PastStart_KeptOnPIMUnlinked":               {"appointment", LeftFilter, Facts{}, Unlink},
	"AppointmentLeftFilter_TrackedFromPIM_KeptOnPIMUnlinked":          {"appointment", LeftFilter, Facts{StartInFuture: true, TrackedFromPIM: true}, Unlink},
	"TaskDeletedOnPIM_Open_DeletedInCRM":                              {"task", PIMDeleted, Facts{State: StateOpen}, DeleteInCRM},
	"TaskDeletedOnPIM_Canceled_DeletedInCRM":                          {"task", PIMDeleted, Facts{State: StateCanceled}, DeleteInCRM},
	"TaskDeletedOnPIM_Completed_NotDeletedInCRM":                      {"task", PIMDeleted, Facts{State: StateCompleted}, Unlink},
	"PhoneCallDeletedOnPIM_Open_DeletedInCRM":                         {"phonecall", PIMDeleted, Facts{State: StateOpen}, DeleteInCRM},
	"LetterDeletedOnPIM_Completed_NotDeletedInCRM":                    {"letter", PIMDeleted, Facts{State: StateCompleted}, Unlink},
	"FaxDeletedOnPIM_Open_DeletedInCRM":                               {"fax", PIMDeleted, Facts{State: StateOpen}, DeleteInCRM},
	"TaskUntrackedOnPIM_SettingOn_DeletedInCRM":                       {"task", PIMUntracked, Facts{State: StateOpen, UntrackDeletesInCRM: true}, DeleteInCRM},
	"TaskUntrackedOnPIM_SettingOff_NotDeletedInCRM":                   {"task", PIMUntracked, Facts{State: StateOpen}, Unlink},
	"TaskUntrackedOnPIM_SettingOnCompleted_NotDeletedInCRM":           {"task", PIMUntracked, Facts{State: StateCompleted, UntrackDeletesInCRM: true}, Unlink},
	"TaskDeletedInCRM_NotCompleted_DeletedOnPIM":                      {"task", CRMDeleted, Facts{State: StateOpen}, DeleteOnPIM},
	"TaskDeletedInCRM_Completed_KeptOnPIMUnlinked":                    {"task", CRMDeleted, Facts{State: StateCompleted}, Unlink},
	"PhoneCallDeletedInCRM_NotCompleted_DeletedOnPIM":                 {"phonecall", CRMDeleted, Facts{State: StateOpen}, DeleteOnPIM},
	"LetterDeletedInCRM_NotCompleted_DeletedOnPIM":                    {"letter", CRMDeleted, Facts{State: StateCanceled}, DeleteOnPIM},
	"FaxDeletedInCRM_Completed_KeptOnPIMUnlinked":                     {"fax", CRMDeleted, Facts{State: StateCompleted}, Unlink},
	"TaskLeftFilter_Open_DeletedOnPIM":                                {"task", LeftFilter, Facts{State: StateOpen}, DeleteOnPIM},
	"TaskLeftFilter_Completed_KeptOnPIMUnlinked":                      {"task", LeftFilter, Facts{State: StateCompleted}, Unlink},
	"TaskLeftFilter_TrackedFromPIM_KeptOnPIMUnlinked":                 {"task", LeftFilter, Facts{State: StateOpen, TrackedFromPIM: true}, Unlink},
	"EmailDeletedOnPIM_NotDeletedInCRM":                               {"email", PIMDeleted, Facts{UserIsOwner: true, UntrackDeletesInCRM: true}, Unlink},
	"EmailUntrackedOnPIM_SettingOn_DeletedInCRM":                      {"email", PIMUntracked, Facts{UntrackDeletesInCRM: true}, DeleteInCRM},
	"EmailUntrackedOnPIM_SettingOff_NotDeletedInCRM":                  {"email", PIMUntracked, Facts{UserIsOwner: true}, Unlink},
	"EmailDeletedInCRM_NeverDeletedOnPIM":                             {"email", CRMDeleted, Facts{UserIsOwner: true}, Unlink},
	"EmailLeftFilter_NeverDeletedOnPIM":                               {"email", LeftFilter, Facts{}, Keep},
}

func TestDeletionRule_ContactDeletedOnPIM_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "ContactDeletedOnPIM_NotDeletedInCRM")
}
func TestDeletionRule_ContactDeletedOnPIM_NotOwner_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "ContactDeletedOnPIM_NotOwner_NotDeletedInCRM")
}
func TestDeletionRule_ContactUntrackedOnPIM_SettingOn_DeletedInCRM(t *testing.T) {
	runRuleCase(t, "ContactUntrackedOnPIM_SettingOn_DeletedInCRM")
}
func TestDeletionRule_ContactUntrackedOnPIM_SettingOff_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "ContactUntrackedOnPIM_SettingOff_NotDeletedInCRM")
}
func TestDeletionRule_ContactDeletedInCRM_NotOwner_DeletedOnPIM(t *testing.T) {
	runRuleCase(t, "ContactDeletedInCRM_NotOwner_DeletedOnPIM")
}
func TestDeletionRule_ContactDeletedInCRM_Owner_KeptOnPIMUnlinked(t *testing.T) {
	runRuleCase(t, "ContactDeletedInCRM_Owner_KeptOnPIMUnlinked")
}
func TestDeletionRule_ContactLeftFilter_ReassignedToOtherOwner_DeletedOnPIM(t *testing.T) {
	runRuleCase(t, "ContactLeftFilter_ReassignedToOtherOwner_DeletedOnPIM")
}
func TestDeletionRule_ContactLeftFilter_ReassignedButTrackedFromPIM_KeptOnPIMUnlinked(t *testing.T) {
	runRuleCase(t, "ContactLeftFilter_ReassignedButTrackedFromPIM_KeptOnPIMUnlinked")
}
func TestDeletionRule_ContactLeftFilter_StillOwner_KeptOnPIMUnlinked(t *testing.T) {
	runRuleCase(t, "ContactLeftFilter_StillOwner_KeptOnPIMUnlinked")
}
func TestDeletionRule_AppointmentDeletedOnPIM_OpenFutureOwner_DeletedInCRM(t *testing.T) {
	runRuleCase(t, "AppointmentDeletedOnPIM_OpenFutureOwner_DeletedInCRM")
}
func TestDeletionRule_AppointmentDeletedOnPIM_ScheduledFutureOrganizer_DeletedInCRM(t *testing.T) {
	runRuleCase(t, "AppointmentDeletedOnPIM_ScheduledFutureOrganizer_DeletedInCRM")
}
func TestDeletionRule_AppointmentDeletedOnPIM_PastStart_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "AppointmentDeletedOnPIM_PastStart_NotDeletedInCRM")
}
func TestDeletionRule_AppointmentDeletedOnPIM_Completed_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "AppointmentDeletedOnPIM_Completed_NotDeletedInCRM")
}
func TestDeletionRule_AppointmentDeletedOnPIM_Canceled_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "AppointmentDeletedOnPIM_Canceled_NotDeletedInCRM")
}
func TestDeletionRule_AppointmentDeletedOnPIM_NotOwnerNorOrganizer_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "AppointmentDeletedOnPIM_NotOwnerNorOrganizer_NotDeletedInCRM")
}
func TestDeletionRule_AppointmentUntrackedOnPIM_OpenFutureOrganizer_DeletedInCRM(t *testing.T) {
	runRuleCase(t, "AppointmentUntrackedOnPIM_OpenFutureOrganizer_DeletedInCRM")
}
func TestDeletionRule_AppointmentUntrackedOnPIM_PastStart_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "AppointmentUntrackedOnPIM_PastStart_NotDeletedInCRM")
}
func TestDeletionRule_AppointmentUntrackedOnPIM_NotOwnerNorOrganizer_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "AppointmentUntrackedOnPIM_NotOwnerNorOrganizer_NotDeletedInCRM")
}
func TestDeletionRule_AppointmentUntrackedOnPIM_Completed_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "AppointmentUntrackedOnPIM_Completed_NotDeletedInCRM")
}
func TestDeletionRule_AppointmentDeletedInCRM_FutureStart_DeletedOnPIM(t *testing.T) {
	runRuleCase(t, "AppointmentDeletedInCRM_FutureStart_DeletedOnPIM")
}
func TestDeletionRule_AppointmentDeletedInCRM_PastStart_KeptOnPIMUnlinked(t *testing.T) {
	runRuleCase(t, "AppointmentDeletedInCRM_PastStart_KeptOnPIMUnlinked")
}
func TestDeletionRule_AppointmentLeftFilter_FutureStart_DeletedOnPIM(t *testing.T) {
	runRuleCase(t, "AppointmentLeftFilter_FutureStart_DeletedOnPIM")
}
func TestDeletionRule_AppointmentLeftFilter_PastStart_KeptOnPIMUnlinked(t *testing.T) {
	runRuleCase(t, "AppointmentLeftFilter_PastStart_KeptOnPIMUnlinked")
}
func TestDeletionRule_AppointmentLeftFilter_TrackedFromPIM_KeptOnPIMUnlinked(t *testing.T) {
	runRuleCase(t, "AppointmentLeftFilter_TrackedFromPIM_KeptOnPIMUnlinked")
}
func TestDeletionRule_TaskDeletedOnPIM_Open_DeletedInCRM(t *testing.T) {
	runRuleCase(t, "TaskDeletedOnPIM_Open_DeletedInCRM")
}
func TestDeletionRule_TaskDeletedOnPIM_Canceled_DeletedInCRM(t *testing.T) {
	runRuleCase(t, "TaskDeletedOnPIM_Canceled_DeletedInCRM")
}
func TestDeletionRule_TaskDeletedOnPIM_Completed_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "TaskDeletedOnPIM_Completed_NotDeletedInCRM")
}
func TestDeletionRule_PhoneCallDeletedOnPIM_Open_DeletedInCRM(t *testing.T) {
	runRuleCase(t, "PhoneCallDeletedOnPIM_Open_DeletedInCRM")
}
func TestDeletionRule_LetterDeletedOnPIM_Completed_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "LetterDeletedOnPIM_Completed_NotDeletedInCRM")
}
func TestDeletionRule_FaxDeletedOnPIM_Open_DeletedInCRM(t *testing.T) {
	runRuleCase(t, "FaxDeletedOnPIM_Open_DeletedInCRM")
}
func TestDeletionRule_TaskUntrackedOnPIM_SettingOn_DeletedInCRM(t *testing.T) {
	runRuleCase(t, "TaskUntrackedOnPIM_SettingOn_DeletedInCRM")
}
func TestDeletionRule_TaskUntrackedOnPIM_SettingOff_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "TaskUntrackedOnPIM_SettingOff_NotDeletedInCRM")
}
func TestDeletionRule_TaskUntrackedOnPIM_SettingOnCompleted_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "TaskUntrackedOnPIM_SettingOnCompleted_NotDeletedInCRM")
}
func TestDeletionRule_TaskDeletedInCRM_NotCompleted_DeletedOnPIM(t *testing.T) {
	runRuleCase(t, "TaskDeletedInCRM_NotCompleted_DeletedOnPIM")
}
func TestDeletionRule_TaskDeletedInCRM_Completed_KeptOnPIMUnlinked(t *testing.T) {
	runRuleCase(t, "TaskDeletedInCRM_Completed_KeptOnPIMUnlinked")
}
func TestDeletionRule_PhoneCallDeletedInCRM_NotCompleted_DeletedOnPIM(t *testing.T) {
	runRuleCase(t, "PhoneCallDeletedInCRM_NotCompleted_DeletedOnPIM")
}
func TestDeletionRule_LetterDeletedInCRM_NotCompleted_DeletedOnPIM(t *testing.T) {
	runRuleCase(t, "LetterDeletedInCRM_NotCompleted_DeletedOnPIM")
}
func TestDeletionRule_FaxDeletedInCRM_Completed_KeptOnPIMUnlinked(t *testing.T) {
	runRuleCase(t, "FaxDeletedInCRM_Completed_KeptOnPIMUnlinked")
}
func TestDeletionRule_TaskLeftFilter_Open_DeletedOnPIM(t *testing.T) {
	runRuleCase(t, "TaskLeftFilter_Open_DeletedOnPIM")
}
func TestDeletionRule_TaskLeftFilter_Completed_KeptOnPIMUnlinked(t *testing.T) {
	runRuleCase(t, "TaskLeftFilter_Completed_KeptOnPIMUnlinked")
}
func TestDeletionRule_TaskLeftFilter_TrackedFromPIM_KeptOnPIMUnlinked(t *testing.T) {
	runRuleCase(t, "TaskLeftFilter_TrackedFromPIM_KeptOnPIMUnlinked")
}
func TestDeletionRule_EmailDeletedOnPIM_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "EmailDeletedOnPIM_NotDeletedInCRM")
}
func TestDeletionRule_EmailUntrackedOnPIM_SettingOn_DeletedInCRM(t *testing.T) {
	runRuleCase(t, "EmailUntrackedOnPIM_SettingOn_DeletedInCRM")
}
func TestDeletionRule_EmailUntrackedOnPIM_SettingOff_NotDeletedInCRM(t *testing.T) {
	runRuleCase(t, "EmailUntrackedOnPIM_SettingOff_NotDeletedInCRM")
}
func TestDeletionRule_EmailDeletedInCRM_NeverDeletedOnPIM(t *testing.T) {
	runRuleCase(t, "EmailDeletedInCRM_NeverDeletedOnPIM")
}
func TestDeletionRule_EmailLeftFilter_NeverDeletedOnPIM(t *testing.T) {
	runRuleCase(t, "EmailLeftFilter_NeverDeletedOnPIM")
}
