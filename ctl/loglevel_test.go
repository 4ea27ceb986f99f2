package ctl

import (
	"context"
	"errors"
	"testing"
)

// levelDaemon is a fakeDaemon whose log level can change.
type levelDaemon struct {
	fakeDaemon
	level string
}

func (d *levelDaemon) SetLogLevel(_ context.Context, level string) (string, error) {
	if level == "loud" {
		return "", errors.New("unknown log level")
	}
	if level != "" {
		d.level = level
	}
	return d.level, nil
}

// TestClient_setLogLevel: a LogLeveler daemon sets and reads its level over
// the socket and its refusal comes back; a daemon that is not one answers
// the protocol error, not a crash.
func TestClient_setLogLevel(t *testing.T) {
	ctx := context.Background()
	d := &levelDaemon{level: "info"}
	c := dial(t, serve(t, d, nil))
	if got, err := c.SetLogLevel(ctx, "trace"); err != nil || got != "trace" || d.level != "trace" {
		t.Errorf("SetLogLevel(trace) = %q, %v (daemon at %q)", got, err, d.level)
	}
	if got, err := c.SetLogLevel(ctx, ""); err != nil || got != "trace" {
		t.Errorf("SetLogLevel(\"\") = %q, %v", got, err)
	}
	if _, err := c.SetLogLevel(ctx, "loud"); err == nil || d.level != "trace" {
		t.Errorf("SetLogLevel(loud) = %v (daemon at %q)", err, d.level)
	}
	plain := dial(t, serve(t, &fakeDaemon{}, nil))
	if _, err := plain.SetLogLevel(ctx, "trace"); err == nil {
		t.Errorf("a daemon without levels accepted SetLogLevel")
	}
}
