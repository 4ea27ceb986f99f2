// Package davcontacts is the CardDAV adapter (RFC 6352, RFC 6578, RFC
// 6764): discovery of the user's address books through go-webdav's
// carddav client, and AddressBook, the per-collection connector the bridge
// drives (pim/davext does the wire work). Objects travel as raw bytes; this
// package never decodes or re-encodes vCards. It imports pim, pim/davext
// and go-webdav, never bridge.
package davcontacts

import (
	"context"
	"fmt"

	"github.com/emersion/go-webdav/carddav"

	"github.com/pimbridge/pimbridge/pim/davext"
)

// AddressBook is the connector for one CardDAV address book: Changes, Get,
// Create, Update and Delete (see davext.Collection for their contracts).
type AddressBook struct {
	*davext.Collection
}

// New returns the connector for the address book at href (a path on c's
// server).
func New(c *davext.Client, href string) *AddressBook {
	return &AddressBook{davext.NewCollection(c, href, davext.AddressBook)}
}

// Info describes an address book found by Discover.
type Info struct {
	Href        string
	Name        string
	Description string
}

// Discover finds the user's address books: the context path (the
// endpoint's own path, else /.well-known/carddav resolved by hand), the
// current-user-principal, the addressbook-home-set and its address books.
// It returns the home set's href too (new address books go under it).
func Discover(ctx context.Context, c *davext.Client) (homeSet string, books []Info, err error) {
	ctxPath, err := c.ContextPath(ctx, "carddav")
	if err != nil {
		return "", nil, fmt.Errorf("davcontacts: discover: %w", err)
	}
	cc, err := carddav.NewClient(c.ErrorDoer(), ctxPath)
	if err != nil {
		return "", nil, fmt.Errorf("davcontacts: discover: %w", err)
	}
	principal, err := cc.FindCurrentUserPrincipal(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("davcontacts: discover: current-user-principal: %w", err)
	}
	homeSet, err = cc.FindAddressBookHomeSet(ctx, principal)
	if err != nil {
		return "", nil, fmt.Errorf("davcontacts: discover: home set: %w", err)
	}
	abs, err := cc.FindAddressBooks(ctx, homeSet)
	if err != nil {
		return "", nil, fmt.Errorf("davcontacts: discover: address books: %w", err)
	}
	for _, ab := range abs {
		books = append(books, Info{Href: davext.NormalizeHref(ab.Path), Name: ab.Name, Description: ab.Description})
	}
	return davext.NormalizeHref(homeSet), books, nil
}
