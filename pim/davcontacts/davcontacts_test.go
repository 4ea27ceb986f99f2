package davcontacts_test

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pimbridge/pimbridge/internal/realserver"
	"github.com/pimbridge/pimbridge/pim/davcontacts"
	"github.com/pimbridge/pimbridge/pim/davext"
	"github.com/pimbridge/pimbridge/pim/pimtest"
)

func client(t testing.TB, url, user, pass string) *davext.Client {
	t.Helper()
	c, err := davext.New(url, &davext.Options{Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAddressBook_DAVServer(t *testing.T) {
	s := pimtest.NewDAVServer(t)
	c := client(t, s.URL, "alice", "x")
	var n atomic.Int32
	pimtest.Run(t, pimtest.Options{Kind: pimtest.Contacts, UIDConflict: true, SyncToken: true}, func(t *testing.T) pimtest.Collection {
		return davcontacts.New(c, s.AddAddressBook(fmt.Sprintf("book%d", n.Add(1))))
	})
}

func TestAddressBook_Radicale(t *testing.T) {
	r := realserver.StartRadicale(t)
	c := client(t, r.URL, r.User, r.Password)
	var n atomic.Int32
	pimtest.Run(t, pimtest.Options{Kind: pimtest.Contacts, UIDConflict: true, SyncToken: true}, func(t *testing.T) pimtest.Collection {
		href := r.CollectionPath(fmt.Sprintf("book%d", n.Add(1)))
		if err := c.MkAddressBook(t.Context(), href, "Book"); err != nil {
			t.Fatal(err)
		}
		return davcontacts.New(c, href)
	})
}

func TestAddressBook_Xandikos(t *testing.T) {
	x := realserver.StartXandikos(t)
	c := client(t, x.URL, x.User, x.Password)
	var n atomic.Int32
	// Xandikos 0.2.8 checks no-uid-conflict for calendars only.
	pimtest.Run(t, pimtest.Options{Kind: pimtest.Contacts, UIDConflict: false, SyncToken: true}, func(t *testing.T) pimtest.Collection {
		href := x.ContactsHome() + fmt.Sprintf("book%d/", n.Add(1))
		if err := c.MkAddressBook(t.Context(), href, "Book"); err != nil {
			t.Fatal(err)
		}
		return davcontacts.New(c, href)
	})
}

func TestDiscover(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		open func(t *testing.T) (c *davext.Client, want []string)
	}{
		{"davserver", func(t *testing.T) (*davext.Client, []string) {
			s := pimtest.NewDAVServer(t)
			return client(t, s.URL, "alice", "x"), []string{s.AddAddressBook("a"), s.AddAddressBook("b")}
		}},
		{"radicale", func(t *testing.T) (*davext.Client, []string) {
			r := realserver.StartRadicale(t)
			c := client(t, r.URL, r.User, r.Password)
			href := r.CollectionPath("crm")
			if err := c.MkAddressBook(ctx, href, "CRM"); err != nil {
				t.Fatal(err)
			}
			return c, []string{href}
		}},
		{"xandikos", func(t *testing.T) (*davext.Client, []string) {
			x := realserver.StartXandikos(t)
			return client(t, x.URL, x.User, x.Password), []string{x.ContactsHome() + "addressbook/"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, want := tt.open(t)
			home, books, err := davcontacts.Discover(ctx, c)
			if err != nil {
				t.Fatalf("Discover = %v", err)
			}
			var got []string
			for _, b := range books {
				got = append(got, b.Href)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) || home == "" {
				t.Errorf("Discover = %q, %q; want home set and %q", home, got, want)
			}
		})
	}
}

// Malformed vCards placed on a real server behind its back (Xandikos
// serves what its git repository holds) come back as raw bytes, each
// under its own href, next to the valid ones.
func TestAddressBook_XandikosMalformedRaw(t *testing.T) {
	x := realserver.StartXandikos(t)
	c := client(t, x.URL, x.User, x.Password)
	href := x.ContactsHome() + "addressbook/"
	files := map[string][]byte{"good.vcf": pimtest.Sample(pimtest.Contacts, "good", "Good")}
	paths, err := filepath.Glob("../davext/testdata/malformed/*.vcf")
	if err != nil || len(paths) == 0 {
		t.Fatalf("fixtures: %v, %d", err, len(paths))
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = b
	}
	x.BulkLoad(t, href, files)
	changed, _, _, err := davcontacts.New(c, href).Changes(t.Context(), "")
	if err != nil {
		t.Fatalf("Changes = %v", err)
	}
	got := map[string][]byte{}
	for _, o := range changed {
		got[path.Base(o.Href)] = o.Data
	}
	for name, want := range files {
		data, ok := got[name]
		if !ok {
			t.Errorf("Changes lacks %s", name)
			continue
		}
		norm := func(b []byte) string { return strings.ReplaceAll(string(b), "\r\n", "\n") }
		if norm(data) != norm(want) {
			t.Errorf("Changes data of %s = %q, want %q", name, data, want)
		}
	}
}
