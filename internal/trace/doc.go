// Package trace is pimbridge's protocol trace: the trace log level, an
// http.RoundTripper that logs one line per HTTP exchange (CRM Web API and
// sync API, CardDAV, CalDAV) and an io.Writer that turns go-imap's raw
// debug stream into one line per IMAP command.
//
// Secrets never reach the log: Authorization, Cookie and Set-Cookie
// headers are never printed, URL user info and credential query
// parameters are masked, IMAP LOGIN and AUTHENTICATE arguments and SASL
// responses are replaced, and every secret registered with a Redactor is
// scrubbed from whatever is written (bodies included) as a last line of
// defence.
package trace
