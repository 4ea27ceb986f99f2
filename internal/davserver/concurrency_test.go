package davserver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestServer_ConcurrentWriters checks that parallel PUTs to one collection
// neither fail with SQLITE_BUSY nor lose counter increments, on a file
// database and in memory (the zero Options).
func TestServer_ConcurrentWriters(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  func(t testing.TB) *testEnv
	}{
		{"file", newTestEnv},
		{"memory", func(t testing.TB) *testEnv {
			ctx := context.Background()
			srv, err := New(ctx, Options{Logger: quietLogger(), BcryptCost: 4})
			mustNoErr(t, err)
			mustNoErr(t, srv.AddUser(ctx, "alice", alicePW))
			_, err = srv.CreateAddressBook(ctx, "alice", "crm", "")
			mustNoErr(t, err)
			hs := httptest.NewServer(srv)
			t.Cleanup(func() { hs.Close(); srv.Close() })
			return &testEnv{srv: srv, http: hs}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env(t)
			const workers, each = 6, 15
			var wg sync.WaitGroup
			errs := make(chan string, workers*each)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						uid := fmt.Sprintf("w%d-%d", w, i)
						req, _ := http.NewRequest(http.MethodPut, env.http.URL+"/alice/contacts/crm/"+uid+".vcf", strings.NewReader(vcardText(uid, uid)))
						req.SetBasicAuth("alice", alicePW)
						req.Header.Set("Content-Type", "text/vcard")
						res, err := http.DefaultClient.Do(req)
						if err != nil {
							errs <- err.Error()
							continue
						}
						res.Body.Close()
						if res.StatusCode != http.StatusCreated {
							errs <- fmt.Sprintf("PUT %s = %d", uid, res.StatusCode)
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
			m := parseMS(t, env.sync(t, "/alice/contacts/crm/", "", ""))
			tok, err := env.srv.SyncToken(context.Background(), "/alice/contacts/crm/")
			mustNoErr(t, err)
			if len(m.Responses) != workers*each || tok != fmt.Sprintf("%s%d", syncTokenPrefix, workers*each) {
				t.Fatalf("after %d PUTs: %d members, token %s", workers*each, len(m.Responses), tok)
			}
		})
	}
}
