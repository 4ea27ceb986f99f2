package crmserver

import (
	"fmt"
	"net/http"

	"github.com/pimbridge/pimbridge/crm"
)

// Availability says where a message can run.
type Availability string

// Availabilities of the message table.
const (
	ServerOnly Availability = "server"
	ClientOnly Availability = "client"
	Both       Availability = "both"
)

// Message is one row of the message availability table.
type Message struct {
	Name         string       `json:"name"`
	Availability Availability `json:"availability"`
	Description  string       `json:"description"`
}

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
	{MsgCreate, Both, "create a record (POST /api/data/{set})"},
	{MsgRetrieve, Both, "read a record"},
	{MsgRetrieveMultiple, Both, "query records"},
	{MsgUpdate, Both, "update named attributes (PATCH)"},
	{MsgDelete, Both, "delete a record"},
	{MsgSetState, Both, "change statecode/statuscode of a record (PATCH)"},
	{MsgExecuteBatch, Both, "JSON $batch with atomicity groups"},
	{MsgRetrieveMetadata, Both, "read entities and attributes"},
	{MsgWhoAmI, Both, "the calling user"},
	{MsgCreateAttribute, ServerOnly, "customization: add a custom attribute"},
	{MsgCreateEntity, ServerOnly, "customization: add a custom entity"},
	{MsgCreateRelation, ServerOnly, "customization: add a custom one-to-many relationship"},
	{MsgIssueToken, ServerOnly, "issue a bearer token"},
	{MsgSubscribe, ServerOnly, "create or list sync subscriptions"},
	{MsgPrepareSync, ServerOnly, "merge changes into SyncEntry"},
	{MsgGetBatch, ServerOnly, "stream a sync batch"},
	{MsgPostSync, ServerOnly, "acknowledge a sync batch"},
	{MsgRecordSyncInfo, ServerOnly, "store sync run statistics"},
	{MsgSetLocalFilter, ServerOnly, "change local data filters"},
	{MsgClaimPrimary, ServerOnly, "make a client the synchronizing client"},
	{MsgWorkflow, ServerOnly, "server-side workflows (run after replay when offline)"},
	{MsgGoOffline, ClientOnly, "take the client offline (offline engine)"},
	{MsgGoOnline, ClientOnly, "replay the offline queue (offline engine)"},
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
