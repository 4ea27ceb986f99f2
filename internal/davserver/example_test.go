package davserver_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/pimbridge/pimbridge/internal/davserver"
)

// The demo and the bridge's in-process tests wire the server like this.
func Example() {
	ctx := context.Background()
	srv, err := davserver.New(ctx, davserver.Options{
		DBPath: "", // in memory; give a file to keep state between runs
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	if err := srv.AddUser(ctx, "alice", "secret"); err != nil {
		panic(err)
	}
	book, _ := srv.CreateAddressBook(ctx, "alice", "crm", "CRM contacts")
	cal, _ := srv.CreateCalendar(ctx, "alice", "calendar", "CRM appointments", "VEVENT")
	tasks, _ := srv.CreateCalendar(ctx, "alice", "tasks", "CRM tasks", "VTODO")
	fmt.Println(book, cal, tasks)

	hs := httptest.NewServer(srv)
	defer hs.Close()
	card := "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ada\r\nFN:Ada Lovelace\r\nEND:VCARD\r\n"
	req, _ := http.NewRequest(http.MethodPut, hs.URL+book+"ada.vcf", strings.NewReader(card))
	req.SetBasicAuth("alice", "secret")
	req.Header.Set("Content-Type", "text/vcard")
	req.Header.Set("If-None-Match", "*")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	res.Body.Close()
	fmt.Println(res.StatusCode)

	obj, _ := srv.GetObject(ctx, book+"ada.vcf")
	tok, _ := srv.SyncToken(ctx, book)
	fmt.Println(string(obj.Data) == card, tok)
	// Output:
	// /alice/contacts/crm/ /alice/calendars/calendar/ /alice/calendars/tasks/
	// 201
	// true http://pimbridge/sync/1
}
