package crmserver

import (
	"context"
	"net/http"
	"time"

	"github.com/pimbridge/pimbridge/crm"
)

// Stage is where in a write a plug-in runs.
type Stage int

// Stages: PreOperation runs before the store write inside the transaction
// and may change Target or abort; PostOperation runs after it, still inside
// the transaction, and aborts the whole write by returning an error.
const (
	PreOperation Stage = iota
	PostOperation
)

func (s Stage) String() string {
	if s == PreOperation {
		return "pre"
	}
	return "post"
}

// PluginContext is what a plug-in sees.
type PluginContext struct {
	Stage   Stage
	Message string // Create, Update, SetState or Delete
	Entity  *crm.Entity
	ID      crm.ID
	// Target holds the attributes the request sets; a pre-stage plug-in may
	// change it. Nil for Delete.
	Target map[string]any
	// PreImage is the record before the write (Update, SetState, Delete);
	// PostImage after it (post stage of Create, Update, SetState).
	PreImage, PostImage *crm.Record
	UserID              crm.ID
	UserName            string
	CallerOrigin        crm.CallerOrigin
	// Tx is the write transaction; plug-ins may read and write through it
	// (as the system, without security checks).
	Tx Tx
}

// Plugin is server-side code that runs in the pre and post stages of every
// write. An error aborts the write; wrap a crm sentinel to choose the
// status (crm.ErrInvalidArgument gives 400).
type Plugin interface {
	Execute(ctx context.Context, pc *PluginContext) error
}

// PluginFunc adapts a function to Plugin.
type PluginFunc func(ctx context.Context, pc *PluginContext) error

// Execute calls f.
func (f PluginFunc) Execute(ctx context.Context, pc *PluginContext) error { return f(ctx, pc) }

// WorkflowContext is what a workflow sees after a create or update.
type WorkflowContext struct {
	Message  string // Create or Update
	Entity   *crm.Entity
	Record   crm.Record // after the write
	UserID   crm.ID
	Metadata *crm.Metadata
	Tx       Tx
	Now      time.Time
}

// Workflow is a server-side rule run after creates and updates, inside the
// write's transaction.
type Workflow interface {
	Name() string
	Run(ctx context.Context, wc *WorkflowContext) error
}

// WorkflowFollowUpTask is the name of the built-in workflow.
const WorkflowFollowUpTask = "follow-up-task"

// FollowUpTaskWorkflow is the built-in rule: a new contact gets a task
// "Follow up with <name>", due in Days days, regarding the contact and
// owned by the contact's owner. It is off unless listed in
// Options.Workflows.
type FollowUpTaskWorkflow struct{ Days int }

// Name implements Workflow.
func (FollowUpTaskWorkflow) Name() string { return WorkflowFollowUpTask }

// Run implements Workflow.
func (w FollowUpTaskWorkflow) Run(ctx context.Context, wc *WorkflowContext) error {
	if wc.Message != MsgCreate || wc.Entity.Name != crm.EntityContact {
		return nil
	}
	days := w.Days
	if days <= 0 {
		days = 7
	}
	task, err := wc.Metadata.Entity(crm.EntityTask)
	if err != nil {
		return err
	}
	name, _ := wc.Record.Attrs["fullname"].(string)
	if name == "" {
		name, _ = wc.Record.Attrs["lastname"].(string)
	}
	subject := "Follow up with " + name
	if n := len([]rune(subject)); n > 400 {
		subject = string([]rune(subject)[:400])
	}
	owner, ok := wc.Record.Attrs["ownerid"].(crm.Ref)
	if !ok {
		owner = crm.Ref{Entity: crm.EntitySystemUser, ID: wc.UserID}
	}
	_, err = wc.Tx.Insert(ctx, task, crm.Record{Entity: crm.EntityTask, ID: crm.NewID(), Attrs: map[string]any{
		"subject":           subject,
		"scheduledend":      wc.Now.UTC().Truncate(time.Second).Add(time.Duration(days) * 24 * time.Hour),
		"regardingobjectid": crm.Ref{Entity: crm.EntityContact, ID: wc.Record.ID},
		"ownerid":           owner,
		"statecode":         int64(0),
		"statuscode":        int64(2),
		"prioritycode":      crm.PriorityNormal,
		"activitytypecode":  crm.EntityTask,
	}})
	return err
}

func callerOrigin(h http.Header) (crm.CallerOrigin, error) {
	return crm.ParseCallerOrigin(h.Get(crm.HeaderCallerOrigin))
}
