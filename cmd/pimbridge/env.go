package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pimbridge/pimbridge/config"
)

// loadConfig reads --config, else the XDG default path. A missing default
// file gives the defaults (a missing --config file is an error).
func (g *globals) loadConfig() (*config.Config, error) {
	path := g.configPath
	if path == "" {
		path = config.DefaultPath(os.Getenv)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			c := config.Default()
			return c, g.applyLevel(c)
		}
	}
	c, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := g.applyLevel(c); err != nil {
		return nil, err
	}
	if c.Client.StateDir == "" {
		c.Client.StateDir = config.DefaultStateDir(os.Getenv)
	}
	// A relative state_dir is taken from the working directory, once:
	// the daemon and the CLI must agree on it whatever their directory.
	abs, err := filepath.Abs(c.Client.StateDir)
	if err != nil {
		return nil, fmt.Errorf("client.state_dir %q: %w", c.Client.StateDir, err)
	}
	c.Client.StateDir = abs
	return c, nil
}

// readSecret resolves a secret reference: the first line of a file, or an
// environment variable. A secret file readable by others is refused, so
// that a misconfigured deployment fails loudly instead of leaking.
func readSecret(name string, ref config.SecretRef) (string, error) {
	switch {
	case ref.File != "":
		fi, err := os.Stat(ref.File)
		if err != nil {
			return "", fmt.Errorf("%s password_file: %w", name, err)
		}
		if fi.Mode().Perm()&0o004 != 0 {
			return "", fmt.Errorf("%s password_file %s is world-readable (mode %v); chmod o-r it", name, ref.File, fi.Mode().Perm())
		}
		b, err := os.ReadFile(ref.File)
		if err != nil {
			return "", fmt.Errorf("%s password_file: %w", name, err)
		}
		s, _, _ := strings.Cut(string(b), "\n")
		s = strings.TrimRight(s, "\r")
		secrets.Add(s)
		return s, nil
	case ref.Env != "":
		v, ok := os.LookupEnv(ref.Env)
		if !ok {
			return "", fmt.Errorf("%s password_env: $%s is not set", name, ref.Env)
		}
		secrets.Add(v)
		return v, nil
	}
	return "", fmt.Errorf("%s: no password_file or password_env configured", name)
}
