// Package ctl is the control protocol between a running `pimbridge daemon`
// and the CLI: commands that change state (sync now, retry or discard a
// sync error) go to the daemon instead of opening a second bridge on the
// same cache (STYLE.md convention 9).
//
// Transport: a unix socket, by convention <state_dir>/ctl.sock, created
// with mode 0600 in the owner's 0700 state directory. On Linux the server
// also checks the peer's uid (SO_PEERCRED) and drops any other user.
//
// Protocol (version 1), modelled on mox's "ctlv0":
//
//	server -> client  "pimbridge-ctl v1\n"            (handshake, first line)
//	client -> server  {"op":"sync","confirm_deletes":false}\n
//	server -> client  {"result":{...}}\n  or  {"error":{"message":"...","kind":"..."}}\n
//
// One JSON request, then one JSON response, each on one line; a connection
// may carry several requests in turn. A client that reads another version
// line fails with *VersionError (errors.Is ErrVersion) and must not fall
// back to working on its own. Error kinds carry the sentinels a caller
// compares with (bridge.ErrItemErrors, idmap.ErrNoSyncError) across the
// socket; see RemoteError.
//
// ctl declares Daemon, the interface the server calls. It imports bridge,
// bridge/mailtrack and idmap for their figures and sentinels only; it never
// imports cmd.
package ctl
