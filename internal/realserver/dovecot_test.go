package realserver

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// login logs in over a raw connection and returns the tagged reply lines of
// LOGIN and of LIST "" "*" RETURN (SPECIAL-USE).
func rawSession(t *testing.T, addr, user, pass string) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	var lines []string
	read := func(tag string) {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v (so far %q)", err, lines)
			}
			lines = append(lines, strings.TrimRight(l, "\r\n"))
			if tag == "" || strings.HasPrefix(l, tag+" ") {
				return
			}
		}
	}
	read("")
	fmt.Fprintf(c, "a LOGIN %s %s\r\n", user, pass)
	read("a")
	fmt.Fprintf(c, "b LIST \"\" \"*\" RETURN (SPECIAL-USE)\r\n")
	read("b")
	fmt.Fprintf(c, "c LOGOUT\r\n")
	read("c")
	return lines
}

func TestDovecot(t *testing.T) {
	s := Dovecot(t)
	s.AddUser(t, "bob", "bobpw")
	want := []string{"a OK", `\Sent) "/" Sent`, `\Drafts) "/" Drafts`, "b OK"}
	check := func(t *testing.T, user, pass string) {
		t.Helper()
		got := strings.Join(rawSession(t, s.Addr, user, pass), "\n")
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Fatalf("session of %s = %q, want it to contain %q\nlog:\n%s", user, got, w, s.Log())
			}
		}
	}
	t.Run("alice", func(t *testing.T) { check(t, s.User, s.Password) })
	t.Run("bob", func(t *testing.T) { check(t, "bob", "bobpw") })
	t.Run("restart", func(t *testing.T) {
		s.Restart(t)
		check(t, s.User, s.Password)
	})
	t.Run("bad password", func(t *testing.T) {
		got := strings.Join(rawSession2(t, s.Addr, s.User, "wrong"), "\n")
		if !strings.Contains(got, "a NO") {
			t.Fatalf("login with a wrong password = %q, want a NO", got)
		}
	})
}

func rawSession2(t *testing.T, addr, user, pass string) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "a LOGIN %s %s\r\n", user, pass)
	l, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return []string{l}
}

func TestDovecot_Kill(t *testing.T) {
	s := Dovecot(t)
	s.Kill(t)
	if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("dovecot still accepts connections after Kill")
	}
	s.Start(t)
	got := strings.Join(rawSession(t, s.Addr, s.User, s.Password), "\n")
	if !strings.Contains(got, "a OK") {
		t.Fatalf("session after Kill+Start = %q, want a OK", got)
	}
}

func TestDovecot_RestartDropsClients(t *testing.T) {
	s := Dovecot(t)
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "a LOGIN %s %s\r\n", s.User, s.Password)
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "a OK") {
		t.Fatalf("login = %q, %v", l, err)
	}
	s.Restart(t)
	fmt.Fprintf(c, "b NOOP\r\n")
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return // dropped, as wanted
		}
		if strings.HasPrefix(l, "b OK") {
			t.Fatalf("a session survived Restart")
		}
	}
}
