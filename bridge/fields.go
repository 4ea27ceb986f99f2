package bridge

import (
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/mapping"
	"github.com/pimbridge/pimbridge/reconcile"
)

// fieldsOf returns the mapped fields of rec as reconcile's canonical
// strings (mapping.Snapshot.Strings).
func fieldsOf(rec crm.Record) (reconcile.Fields, error) {
	f, err := mapping.NewSnapshot(rec).Strings()
	return reconcile.Fields(f), err
}

// attrsOf converts canonical field strings back to CRM values ("" clears).
func attrsOf(entity string, f reconcile.Fields) (map[string]any, error) {
	return mapping.AttrsOfStrings(entity, f)
}
