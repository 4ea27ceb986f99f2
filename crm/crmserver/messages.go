package crmserver

import (
	"fmt"
	"net/http"

	"github.com/pimbridge/pimbridge/crm"
)

// Availability and Message are crm's (crm/roles.go), which clients share.
type (
	Availability = crm.Availability
	Message      = crm.Message
)

// Availabilities of the message table.
const (
	ServerOnly = crm.MessageServerOnly
	ClientOnly = crm.MessageClientOnly
	Both       = crm.MessageBoth
)

// Message names.
const (
	MsgCreate           = "Create"
	MsgRetrieve         = "Retrieve"
	MsgRetrieveMultiple = "RetrieveMultiple"
	MsgUpdate           = "Update"
	MsgDelete           = "Delete"
	MsgSetState         = "SetState"
	MsgExecuteBatch     = "ExecuteMultiple"
	MsgRetrieveMetadata = "RetrieveMetadata"
	MsgCreateAttribute  = "CreateAttribute"
	MsgCreateEntity     = "CreateEntity"
	MsgCreateRelation   = "CreateOneToManyRelationship"
	MsgWhoAmI           = "WhoAmI"
	MsgIssueToken       = "IssueToken"
	MsgSubscribe        = "Subscribe"
	MsgPrepareSync      = "PrepareSync"
	MsgGetBatch         = "GenerateSyncData"
	MsgPostSync         = "PostSync"
	MsgRecordSyncInfo   = "RecordSyncInfo"
	MsgSetLocalFilter   = "SetLocalDataFilter"
	MsgClaimPrimary     = "SetSynchronizingClient"
	MsgWorkflow         = "ExecuteWorkflow"
	MsgGoOffline        = "GoOffline"
	MsgGoOnline         = "GoOnline"
)

// Messages is the message availability table: which operations the CRM
// server runs, which only an offline client runs, and which both do.
var Messages = []Message{
	{Name: MsgCreate, Availability: Both, Description: "create a record (POST /api/data/{set})"},
	{Name: MsgRetrieve, Availability: Both, Description: "read a record"},
	{Name: MsgRetrieveMultiple, Availability: Both, Description: "query records"},
	{Name: MsgUpdate, Availability: Both, Description: "update named attributes (PATCH)"},
	{Name: MsgDelete, Availability: Both, Description: "delete a record"},
	{Name: MsgSetState, Availability: Both, Description: "change statecode/statuscode of a record (PATCH)"},
	{Name: MsgExecuteBatch, Availability: Both, Description: "JSON $batch with atomicity groups"},
	{Name: MsgRetrieveMetadata, Availability: Both, Description: "read entities and attributes"},
	{Name: MsgWhoAmI, Availability: Both, Description: "the calling user"},
	{Name: MsgCreateAttribute, Availability: ServerOnly, Description: "customization: add a custom attribute"},
	{Name: MsgCreateEntity, Availability: ServerOnly, Description: "customization: add a custom entity"},
	{Name: MsgCreateRelation, Availability: ServerOnly, Description: "customization: add a custom one-to-many relationship"},
	{Name: MsgIssueToken, Availability: ServerOnly, Description: "issue a bearer token"},
	{Name: MsgSubscribe, Availability: ServerOnly, Description: "create or list sync subscriptions"},
	{Name: MsgPrepareSync, Availability: ServerOnly, Description: "merge changes into SyncEntry"},
	{Name: MsgGetBatch, Availability: ServerOnly, Description: "stream a sync batch"},
	{Name: MsgPostSync, Availability: ServerOnly, Description: "acknowledge a sync batch"},
	{Name: MsgRecordSyncInfo, Availability: ServerOnly, Description: "store sync run statistics"},
	{Name: MsgSetLocalFilter, Availability: ServerOnly, Description: "change local data filters"},
	{Name: MsgClaimPrimary, Availability: ServerOnly, Description: "make a client the synchronizing client"},
	{Name: MsgWorkflow, Availability: ServerOnly, Description: "server-side workflows (run after replay when offline)"},
	{Name: MsgGoOffline, Availability: ClientOnly, Description: "take the client offline (offline engine)"},
	{Name: MsgGoOnline, Availability: ClientOnly, Description: "replay the offline queue (offline engine)"},
}

// messageAllowed returns crm.ErrUnavailable for a server-only message on an
// offline server (and for a client-only one on the real server).
func (s *Server) messageAllowed(name string) error {
	for _, m := range Messages {
		if m.Name != name {
			continue
		}
		if s.opts.Offline && m.Availability == ServerOnly || !s.opts.Offline && m.Availability == ClientOnly {
			where := "online"
			if s.opts.Offline {
				where = "offline"
			}
			return fmt.Errorf("%w: %s is not available %s", crm.ErrUnavailable, name, where)
		}
		return nil
	}
	return nil
}

func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request, _ *Principal) {
	writeJSON(w, http.StatusOK, map[string]any{"offline": s.opts.Offline, "value": Messages})
}
