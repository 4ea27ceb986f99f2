// Package integration holds the end-to-end tests of the PIM sync:
// the bridge against the project's CRM server (crm/crmtest) and against
// CardDAV/CalDAV servers: the in-process internal/davserver for fast runs,
// and real Radicale and Xandikos started by internal/realserver (skipped by
// hand when missing, failing when CI=true). Scenario bodies are shared; only
// the server differs. There is no non-test code here.
package integration
