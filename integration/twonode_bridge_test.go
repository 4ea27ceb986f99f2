package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/mapping"
	"github.com/pimbridge/pimbridge/pim/davcontacts"
	"github.com/pimbridge/pimbridge/pim/davext"
)

// nodeBridge is one user's CardDAV bridge whose CRM is one node of a
// two-node server, with its own address book; cycles run all along, and
// the user adds cards on the phone meanwhile.
type nodeBridge struct {
	name  string
	owner crm.ID
	b     *bridge.Bridge
	book  *davext.Collection
	added []string // lastnames of the cards the user made on the phone
}

func newNodeBridge(t *testing.T, dav davEnv, name string, owner crm.ID, c *crmclient.Client) *nodeBridge {
	t.Helper()
	dav = dav.fresh(t, name)
	cache, err := idmap.OpenOptions(context.Background(), filepath.Join(t.TempDir(), "cache.db"), &idmap.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	b, err := bridge.New(bridge.Options{
		CRM:      c,
		Fenced:   func(g int64) bridge.CRM { return c.WithGeneration(g) },
		ClientID: name,
		Cache:    cache,
		Contacts: davcontacts.New(dav.client(t), dav.Book),
		Settings: bridge.Settings{AllowDuplicates: true},
		Logger:   quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &nodeBridge{name: name, owner: owner, b: b, book: davext.NewCollection(dav.client(t), dav.Book, davext.AddressBook)}
}

// run cycles the bridge until stop closes, adding a card on the phone every
// few cycles. Cycles fail while the bridge's node is down; the next one
// picks up.
func (nb *nodeBridge) run(ctx context.Context, stop <-chan struct{}, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%3 == 0 {
				last := fmt.Sprintf("%s-phone-%d", nb.name, i)
				if _, err := nb.book.Create(ctx, last+".vcf", []byte(vcard(last, "Pat", last))); err == nil {
					nb.added = append(nb.added, last)
				}
			}
			_, _ = nb.b.Cycle(ctx, bridge.CycleOptions{})
			time.Sleep(100 * time.Millisecond)
		}
	}()
}

// converge runs cycles until one moves nothing, then checks the address
// book against the CRM store: every contact the user owns is on the phone
// exactly once with its current last name and job title, no CRM id is on
// two cards, and every card made on the phone is in CRM exactly once.
func (nb *nodeBridge) converge(t *testing.T, ctx context.Context, st *crmstore.Store) {
	t.Helper()
	for i := 0; ; i++ {
		s, err := nb.b.Cycle(ctx, bridge.CycleOptions{})
		if err == nil && s.ToCRM == (bridge.Counter{}) && s.ToPIM == (bridge.Counter{}) {
			break
		}
		if i > 20 {
			t.Fatalf("%s: no quiet cycle after 20 (%v, %+v)", nb.name, err, s)
		}
	}
	objs, _, _, err := nb.book.Changes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	cards := map[crm.ID][]crm.Record{}
	byLast := map[string]int{}
	for _, o := range objs {
		res, err := mapping.MapObject("text/vcard", o.Data, nil)
		if err != nil || len(res) == 0 {
			t.Errorf("%s: card %s unreadable: %v", nb.name, o.Href, err)
			continue
		}
		r := res[0].Record
		if r.ID != (crm.ID{}) {
			cards[r.ID] = append(cards[r.ID], r)
		}
		last, _ := r.Attrs["lastname"].(string)
		byLast[last]++
	}
	m, err := st.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := m.Entity(crm.EntityContact)
	var owned []crm.Record
	crmByLast := map[string]int{}
	err = st.View(ctx, func(tx crmserver.Tx) error {
		recs, err := tx.Query(ctx, e, crm.Query{Select: []string{"lastname", "jobtitle", "ownerid"}}, crmserver.QueryOptions{})
		for _, r := range recs {
			last, _ := r.Attrs["lastname"].(string)
			crmByLast[last]++
			if ref, ok := r.Attrs["ownerid"].(crm.Ref); ok && ref.ID == nb.owner {
				owned = append(owned, r)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range owned {
		got := cards[r.ID]
		if len(got) != 1 {
			t.Errorf("%s: contact %s (%v) is on %d cards, want 1", nb.name, r.ID, r.Attrs["lastname"], len(got))
			continue
		}
		for _, f := range []string{"lastname", "jobtitle"} {
			want, _ := r.Attrs[f].(string)
			have, _ := got[0].Attrs[f].(string)
			if want != have {
				t.Errorf("%s: contact %s %s = %q on the phone, %q in CRM", nb.name, r.ID, f, have, want)
			}
		}
	}
	for id, got := range cards {
		if len(got) > 1 {
			t.Errorf("%s: CRM id %s on %d cards", nb.name, id, len(got))
		}
	}
	for _, last := range nb.added {
		if crmByLast[last] != 1 {
			t.Errorf("%s: the card %q made on the phone is in CRM %d times, want 1", nb.name, last, crmByLast[last])
		}
	}
	t.Logf("%s: %d contacts owned, %d cards, %d made on the phone", nb.name, len(owned), len(objs), len(nb.added))
}
