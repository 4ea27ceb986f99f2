// Package crm is the CRM domain shared by every part of pimbridge: entity and
// attribute metadata, records and their JSON form, record IDs, and the
// sentinel errors that callers compare with errors.Is, and the wire types
// of the HTTP API that crmserver serves and crmclient speaks (syncapi.go,
// roles.go), so that the client never imports the server.
//
// It owns no I/O. It must not import any other pimbridge package; crmstore,
// crmserver, crmclient, offline, mapping and bridge all build on it.
//
// Logical names follow the Dynamics CRM / Dataverse spelling (contact,
// emailaddress1, address1_stateorprovince, scheduledend, ...), and the JSON
// form follows the Dataverse Web API where that is practical; see record.go
// for the one deliberate difference (lookups are objects).
package crm
