// Package ui is the daemon's local web page (`ui.listen`, 127.0.0.1:8484 by
// default): the client state, the sync errors to resolve, the plan of the
// next cycle with a held-back mass deletion to confirm, and going offline
// and online with their progress.
//
// It owns the HTTP handlers, the html/template pages and their assets
// (embedded with go:embed; nothing is fetched at run time), the access key
// (<state_dir>/ui.key, 0600) and the request checks: a page needs the key's
// cookie (HttpOnly, SameSite=Strict), set by opening the URL that carries
// the key, or the key in the X-Pimbridge-Key header; a state-changing
// request also needs the CSRF token (unless it carries the header), an
// Origin equal to the page's own and a Sec-Fetch-Site of same-origin (when
// the browser sends them), and a Host naming the loopback listener. No CORS
// header is ever sent.
//
// The daemon's work is behind Backend, which cmd/pimbridge implements with
// the code paths of its own commands (errors retry|discard|link, plan,
// sync --confirm-deletes, go-offline, go-online); this package decides no
// sync rule. It must not import cmd, and imports bridge, idmap, offline and
// crm only for their types.
package ui
