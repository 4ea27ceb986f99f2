package davserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Figures for the report: go test -run XXX -bench . ./internal/davserver

func BenchmarkServer_PutHTTP(b *testing.B) {
	env := newTestEnv(b)
	client := &http.Client{}
	b.ResetTimer()
	for i := range b.N {
		uid := fmt.Sprintf("b%d", i)
		req, _ := http.NewRequest(http.MethodPut, env.http.URL+"/alice/contacts/crm/"+uid+".vcf", strings.NewReader(vcardText(uid, uid)))
		req.SetBasicAuth("alice", alicePW)
		req.Header.Set("Content-Type", "text/vcard")
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			b.Fatalf("PUT = %d", res.StatusCode)
		}
	}
}

func benchList(b *testing.B, n int, method, body string, header map[string]string) {
	env := newTestEnv(b)
	ctx := context.Background()
	for i := range n {
		uid := fmt.Sprintf("c%d", i)
		if _, err := env.srv.PutObject(ctx, "/alice/contacts/crm/"+uid+".vcf", []byte(vcardText(uid, uid)), "", ""); err != nil {
			b.Fatal(err)
		}
	}
	client := &http.Client{}
	b.ResetTimer()
	for range b.N {
		req, _ := http.NewRequest(method, env.http.URL+"/alice/contacts/crm/", strings.NewReader(body))
		req.SetBasicAuth("alice", alicePW)
		req.Header.Set("Content-Type", "application/xml")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusMultiStatus || n == 0 {
			b.Fatalf("%s = %d", method, res.StatusCode)
		}
	}
}

func BenchmarkServer_SyncCollection1k(b *testing.B) {
	benchList(b, 1000, "REPORT", strings.Replace(strings.Replace(syncBody, "%s", "", 1), "%s", "", 1), nil)
}

func BenchmarkServer_PropfindDepth1_1k(b *testing.B) {
	benchList(b, 1000, "PROPFIND", `<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>`, map[string]string{"Depth": "1"})
}
