package main

import (
	"bytes"
	"context"
	"testing"
)

func TestRun_usage(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"no-such-command"}, nil, &out, &errb)
	if got := exitCode(&errb, err); got != exitUsage {
		t.Errorf("exit code for an unknown command = %d, want %d (err %v)", got, exitUsage, err)
	}
	err = run(context.Background(), []string{"--no-such-flag"}, nil, &out, &errb)
	if got := exitCode(&errb, err); got != exitUsage {
		t.Errorf("exit code for an unknown flag = %d, want %d (err %v)", got, exitUsage, err)
	}
}
