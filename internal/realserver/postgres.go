package realserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgreSQL is a running PostgreSQL server (Debian's postgresql package)
// on 127.0.0.1 with trust authentication for the superuser "postgres", in
// a fresh data directory that Stop removes.
//
// PostgreSQL refuses to run as root. Run by root, the server runs as the
// system user "postgres" that Debian's package creates (through runuser),
// in a directory made outside t.TempDir (whose 0700 parents that user
// could not enter) and chowned to it.
type PostgreSQL struct {
	Port int
	Dir  string // data directory
	top  string // the folder Stop removes
	bin  string
	as   string // system user the server runs as; "" for the current one
	cmd  *exec.Cmd

	dbs     atomic.Int64
	mkdb    sync.Once
	mkdbErr error
}

// pgBinDirs are the places Debian puts the server binaries (newest first).
var pgBinDirs = []string{"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"}

// ErrNoPostgres is returned by NewPostgres when no server binary is
// installed.
var ErrNoPostgres = errors.New("realserver: PostgreSQL is not installed (run make testdeps)")

// PostgresBin returns the folder of PostgreSQL's initdb and postgres, or
// "" when none is installed.
func PostgresBin() string {
	for _, d := range pgBinDirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

// StartPostgres starts a PostgreSQL server for the test and stops it at
// cleanup. Missing binaries skip the test, or fail it under CI=true.
func StartPostgres(t testing.TB) *PostgreSQL {
	t.Helper()
	if PostgresBin() == "" {
		Require(t, "/usr/lib/postgresql/15/bin/postgres")
		return nil
	}
	pg, err := NewPostgres()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	return pg
}

// NewPostgres starts a server that lives until Stop, for a TestMain that
// shares one server among a package's tests. It returns ErrNoPostgres when
// the binaries are missing.
func NewPostgres() (*PostgreSQL, error) {
	bin := PostgresBin()
	if bin == "" {
		return nil, ErrNoPostgres
	}
	pg := &PostgreSQL{bin: bin}
	dir, err := os.MkdirTemp("", "pimbridge-pg-")
	if err != nil {
		return nil, fmt.Errorf("realserver: postgres dir: %w", err)
	}
	pg.top = dir
	pg.Dir = filepath.Join(dir, "data")
	if os.Geteuid() == 0 {
		pg.as = "postgres"
		u, err := user.Lookup(pg.as)
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("realserver: postgres runs as the system user %q (created by Debian's postgresql package): %w", pg.as, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chmod(dir, 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	initdb := pg.command(filepath.Join(bin, "initdb"), "-D", pg.Dir, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("realserver: initdb: %w\n%s", err, out)
	}
	for try := 0; ; try++ {
		err := pg.start()
		if err == nil {
			return pg, nil
		}
		if try == 2 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// start runs postgres on a free port and waits until it takes logins.
func (pg *PostgreSQL) start() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	pg.Port = port
	logPath := filepath.Join(pg.top, "postgres.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := pg.command(filepath.Join(pg.bin, "postgres"), "-D", pg.Dir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+pg.top,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("realserver: start postgres: %w", err)
	}
	pg.cmd = cmd
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command(filepath.Join(pg.bin, "pg_isready"), "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres").CombinedOutput()
		if err == nil {
			_ = pg.cmd.Process.Release() // pg_ctl stops it, by its pid file
			return nil
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("realserver: postgres exited: %s\n%s", out, b)
		default:
		}
		if time.Now().After(deadline) {
			pg.stopServer()
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("realserver: postgres not ready: %v %s\n%s", err, out, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("realserver: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (pg *PostgreSQL) command(name string, args ...string) *exec.Cmd {
	if pg.as == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("runuser", append([]string{"-u", pg.as, "--", name}, args...)...)
}

// stopServer stops the server with a fast shutdown (rolls back open
// transactions, leaves no shared memory behind) and waits for it.
func (pg *PostgreSQL) stopServer() {
	out, err := pg.command(filepath.Join(pg.bin, "pg_ctl"), "-D", pg.Dir, "-m", "fast", "-w", "-t", "60", "stop").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Is server running?") {
		fmt.Fprintf(os.Stderr, "realserver: pg_ctl stop: %v\n%s", err, out)
	}
}

// Stop stops the server and removes its folder.
func (pg *PostgreSQL) Stop() {
	pg.stopServer()
	os.RemoveAll(pg.top)
}

// URL returns the connection URL of database db.
func (pg *PostgreSQL) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.Port, db)
}

// NewDatabase returns the URL of a fresh, empty database for the test: a
// new schema of the server's shared database "pimbridge" (named by the
// URL's options=-csearch_path=...), which takes milliseconds where CREATE DATABASE takes
// a second. The CRM store keeps each schema apart (its locks and
// notification channels are per schema).
func (pg *PostgreSQL) NewDatabase(t testing.TB) string {
	t.Helper()
	u, err := pg.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// CreateDatabase is NewDatabase outside a test.
func (pg *PostgreSQL) CreateDatabase() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pg.mkdb.Do(func() {
		cmd := exec.CommandContext(ctx, filepath.Join(pg.bin, "createdb"), "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", "postgres", "pimbridge")
		if out, err := cmd.CombinedOutput(); err != nil {
			pg.mkdbErr = fmt.Errorf("realserver: createdb pimbridge: %w\n%s", err, strings.TrimSpace(string(out)))
		}
	})
	if pg.mkdbErr != nil {
		return "", pg.mkdbErr
	}
	conn, err := pgx.Connect(ctx, pg.URL("pimbridge"))
	if err != nil {
		return "", fmt.Errorf("realserver: postgres: %w", err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), pg.dbs.Add(1))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		return "", fmt.Errorf("realserver: create schema %s: %w", name, err)
	}
	return pg.URL("pimbridge") + "&options=-csearch_path%3D" + name, nil
}
