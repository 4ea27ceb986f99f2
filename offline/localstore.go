package offline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
)

// localStore is the crmserver.Store of the local API: the replica, with
// every write transaction also writing the offline queue rows of the
// request being served, and authentication against the cached login.
type localStore struct {
	*crmstore.Store
	e *Engine
}

var _ crmserver.Store = (*localStore)(nil)

// AddAttribute is refused: metadata is read-only offline.
func (s *localStore) AddAttribute(ctx context.Context, entity string, a crm.Attribute) (*crm.Metadata, error) {
	return nil, fmt.Errorf("%w: %s is not available offline (metadata is read-only)", crm.ErrUnavailable, crmserver.MsgCreateAttribute)
}

// Update runs fn in one replica transaction and, when fn succeeds and the
// context carries a captured request, writes its queue rows in the same
// transaction: a write and its queue row commit or vanish together.
func (s *localStore) Update(ctx context.Context, fn func(crmserver.Tx) error) error {
	c, _ := ctx.Value(captureKey{}).(*capture)
	return s.Store.Update(ctx, func(tx crmserver.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if c == nil || c.done || len(c.rows) == 0 {
			return nil
		}
		stx, ok := crmstore.SQLTx(tx)
		if !ok {
			return fmt.Errorf("offline: queue: no SQL transaction")
		}
		for _, q := range c.rows {
			if err := insertQueueRow(ctx, stx, q); err != nil {
				return err
			}
		}
		c.done = true
		return nil
	})
}

// Authenticate checks the cached login (name and bcrypt hash taken at the
// last GoOffline).
func (s *localStore) Authenticate(ctx context.Context, name, password string) (*crmserver.Principal, error) {
	db := s.DB()
	user, err := getState(ctx, db, keyUserName)
	if err != nil {
		return nil, err
	}
	hash, err := getState(ctx, db, keyPasswordHash)
	if err != nil {
		return nil, err
	}
	if user == "" || hash == "" || name != user || bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return nil, fmt.Errorf("%w: bad user name or password", crm.ErrUnauthenticated)
	}
	id, err := getID(ctx, db, keyUserID)
	if err != nil {
		return nil, err
	}
	return s.Principal(ctx, id)
}

// AuthenticateToken is refused: bearer tokens are issued by the server.
func (s *localStore) AuthenticateToken(ctx context.Context, token string) (*crmserver.Principal, error) {
	return nil, fmt.Errorf("%w: bearer tokens are not accepted offline; use Basic", crm.ErrUnauthenticated)
}

// IssueToken is a server-only message.
func (s *localStore) IssueToken(ctx context.Context, user crm.ID, ttl time.Duration) (string, time.Time, error) {
	return "", time.Time{}, fmt.Errorf("%w: %s is not available offline", crm.ErrUnavailable, crmserver.MsgIssueToken)
}

// Principal builds the cached user with the role definitions the server
// gave at the last GoOffline or refresh, so that the local API grants
// exactly the server's rights. A replica filled by a server that did not
// send definitions falls back to the replica's roles of the same names.
func (s *localStore) Principal(ctx context.Context, uid crm.ID) (*crmserver.Principal, error) {
	db := s.DB()
	id, err := getID(ctx, db, keyUserID)
	if err != nil {
		return nil, err
	}
	if id != uid || id == (crm.ID{}) {
		return nil, crm.ErrUnauthenticated
	}
	name, err := getState(ctx, db, keyUserName)
	if err != nil {
		return nil, err
	}
	p := &crmserver.Principal{UserID: id, Name: name}
	defs, err := getState(ctx, db, keyRoleDefs)
	if err != nil {
		return nil, err
	}
	if defs != "" && defs != "null" {
		if err := json.Unmarshal([]byte(defs), &p.Roles); err != nil {
			return nil, fmt.Errorf("offline: cached roles: %w", err)
		}
		return p, nil
	}
	roles, err := getState(ctx, db, keyRoles)
	if err != nil {
		return nil, err
	}
	for _, rn := range strings.Split(roles, ",") {
		if rn == "" {
			continue
		}
		r, err := s.Role(ctx, rn)
		if err != nil {
			s.e.log.Warn("offline: role unknown to the replica", "role", rn)
			continue
		}
		p.Roles = append(p.Roles, r)
	}
	return p, nil
}

// AddEntity is refused: metadata is read-only offline.
func (s *localStore) AddEntity(ctx context.Context, e crm.Entity) (*crm.Metadata, error) {
	return nil, fmt.Errorf("%w: %s is not available offline (metadata is read-only)", crm.ErrUnavailable, crmserver.MsgCreateEntity)
}

// AddRelationship is refused: metadata is read-only offline.
func (s *localStore) AddRelationship(ctx context.Context, rel crm.Relationship) (*crm.Metadata, crm.Relationship, error) {
	return nil, rel, fmt.Errorf("%w: %s is not available offline (metadata is read-only)", crm.ErrUnavailable, crmserver.MsgCreateRelation)
}
