package crmstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"golang.org/x/crypto/bcrypt"
)

// User is a login.
type User struct {
	ID       crm.ID   `json:"systemuserid"`
	Name     string   `json:"name"`
	Roles    []string `json:"roles"`
	Disabled bool     `json:"disabled,omitempty"`
}

func (s *Store) ensureRoles(ctx context.Context) error {
	for _, r := range crmserver.BuiltinRoles() {
		def, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("crmstore: roles: %w", err)
		}
		if _, err := s.x.ExecContext(ctx, "INSERT OR IGNORE INTO roles (name, def) VALUES (?, ?)", r.Name, string(def)); err != nil {
			return fmt.Errorf("crmstore: roles: %w", err)
		}
	}
	return nil
}

// validUserName: 1-64 characters from [A-Za-z0-9._@-].
func validUserName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	return strings.IndexFunc(n, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r))
	}) < 0
}

// CreateUser creates a login and its systemuser record with the given
// roles. It returns crm.ErrConflict when the name is taken.
func (s *Store) CreateUser(ctx context.Context, name, password string, roles ...string) (User, error) {
	if !validUserName(name) {
		return User{}, fmt.Errorf("%w: user name %q (1-64 of A-Z a-z 0-9 . _ @ -)", crm.ErrInvalidArgument, name)
	}
	if len(password) < 8 || len(password) > 72 {
		return User{}, fmt.Errorf("%w: password must have 8 to 72 bytes", crm.ErrInvalidArgument)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.bcryptCost())
	if err != nil {
		return User{}, fmt.Errorf("crmstore: hash password: %w", err)
	}
	u := User{ID: crm.NewID(), Name: name, Roles: roles}
	m, _ := s.Metadata(ctx)
	su, _ := m.Entity(crm.EntitySystemUser)
	err = s.Update(ctx, func(tx crmserver.Tx) error {
		t := tx.(*txn)
		if _, err := t.q.ExecContext(ctx, "INSERT INTO users (id, name, pwhash) VALUES (?, ?, ?)", u.ID.String(), name, string(hash)); err != nil {
			if isUniqueErr(err) {
				return fmt.Errorf("%w: user %q exists", crm.ErrConflict, name)
			}
			return fmt.Errorf("crmstore: create user: %w", err)
		}
		for _, r := range roles {
			if err := t.addRole(ctx, u.ID, r); err != nil {
				return err
			}
		}
		_, err := tx.Insert(ctx, su, crm.Record{Entity: su.Name, ID: u.ID, Attrs: map[string]any{
			"domainname": name, "fullname": name,
			"ownerid": crm.Ref{Entity: crm.EntitySystemUser, ID: u.ID},
		}})
		return err
	})
	if err != nil {
		return User{}, err
	}
	s.log.Info("crmstore: user created", "user", name, "roles", roles)
	return u, nil
}

func (t *txn) addRole(ctx context.Context, user crm.ID, role string) error {
	var n int
	if err := t.q.QueryRowContext(ctx, "SELECT count(*) FROM roles WHERE name = ?", role).Scan(&n); err != nil {
		return fmt.Errorf("crmstore: role: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: role %q", crm.ErrNotFound, role)
	}
	if _, err := t.q.ExecContext(ctx, "INSERT OR IGNORE INTO user_roles (user, role) VALUES (?, ?)", user.String(), role); err != nil {
		return fmt.Errorf("crmstore: role: %w", err)
	}
	return nil
}

// SetPassword replaces a user's password and ends every session of the
// user: it bumps the token generation, so bearer tokens and the server's
// Basic-auth cache stop working at once.
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	if len(password) < 8 || len(password) > 72 {
		return fmt.Errorf("%w: password must have 8 to 72 bytes", crm.ErrInvalidArgument)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.bcryptCost())
	if err != nil {
		return fmt.Errorf("crmstore: hash password: %w", err)
	}
	err = s.Update(ctx, func(tx crmserver.Tx) error {
		t := tx.(*txn)
		res, err := t.q.ExecContext(ctx, "UPDATE users SET pwhash = ? WHERE name = ?", string(hash), name)
		if err != nil {
			return fmt.Errorf("crmstore: set password: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: user %q", crm.ErrNotFound, name)
		}
		return t.revokeByName(ctx, name)
	})
	if err != nil {
		return err
	}
	s.log.Info("crmstore: password changed", "user", name)
	return nil
}

func (s *Store) bcryptCost() int {
	if s.cost == 0 {
		return bcrypt.DefaultCost
	}
	return s.cost
}

// revokeByName bumps a user's token generation and drops the user's
// tokens, which are dead from now on.
func (t *txn) revokeByName(ctx context.Context, name string) error {
	var id string
	if err := t.q.QueryRowContext(ctx, "UPDATE users SET generation = generation + 1 WHERE name = ? RETURNING id", name).Scan(&id); err != nil {
		return notFound(err, "user "+name)
	}
	if _, err := t.q.ExecContext(ctx, "DELETE FROM tokens WHERE user = ?", id); err != nil {
		return fmt.Errorf("crmstore: revoke tokens: %w", err)
	}
	return nil
}

// syncDisabled is called when a systemuser record's isdisabled is written
// (through the API or DisableUser): the login follows it, and disabling
// ends every session. A systemuser without a login is left alone.
func (t *txn) syncDisabled(ctx context.Context, id crm.ID, disabled bool) error {
	var name string
	var was bool
	err := t.q.QueryRowContext(ctx, "SELECT name, disabled FROM users WHERE id = ?", id.String()).Scan(&name, &was)
	if err == errNoRows {
		return nil
	}
	if err != nil {
		return fmt.Errorf("crmstore: user state: %w", err)
	}
	if was == disabled {
		return nil
	}
	if _, err := t.q.ExecContext(ctx, "UPDATE users SET disabled = ? WHERE id = ?", disabled, id.String()); err != nil {
		return fmt.Errorf("crmstore: user state: %w", err)
	}
	if disabled {
		return t.revokeByName(ctx, name)
	}
	return nil
}

// DisableUser disables (or, with disabled false, enables) a login. It sets
// the systemuser record's isdisabled, which is the same as an admin
// setting it through the API: a disabled user cannot log in and every
// token and cached login of theirs stops working at once.
func (s *Store) DisableUser(ctx context.Context, name string, disabled bool) error {
	u, err := s.User(ctx, name)
	if err != nil {
		return err
	}
	m, err := s.Metadata(ctx)
	if err != nil {
		return err
	}
	su, err := m.Entity(crm.EntitySystemUser)
	if err != nil {
		return err
	}
	err = s.Update(ctx, func(tx crmserver.Tx) error {
		if ok, err := tx.Exists(ctx, su, u.ID); err != nil {
			return err
		} else if !ok {
			return tx.(*txn).syncDisabled(ctx, u.ID, disabled)
		}
		_, err := tx.Patch(ctx, su, u.ID, map[string]any{"isdisabled": disabled})
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("crmstore: user state changed", "user", u.Name, "disabled", disabled)
	return nil
}

// RemoveUser deletes a login with its roles and tokens. Its systemuser
// record stays, disabled, because records still name it as their owner.
func (s *Store) RemoveUser(ctx context.Context, name string) error {
	if err := s.DisableUser(ctx, name, true); err != nil {
		return err
	}
	res, err := s.x.ExecContext(ctx, "DELETE FROM users WHERE name = ?", name)
	if err != nil {
		return fmt.Errorf("crmstore: remove user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: user %q", crm.ErrNotFound, name)
	}
	s.log.Info("crmstore: user removed", "user", name)
	return nil
}

// DeleteRole deletes a role; users who had it lose it. The built-in roles
// cannot be deleted (every start would create them again).
func (s *Store) DeleteRole(ctx context.Context, name string) error {
	for _, r := range crmserver.BuiltinRoles() {
		if r.Name == name {
			return fmt.Errorf("%w: role %q is built in", crm.ErrInvalidArgument, name)
		}
	}
	res, err := s.x.ExecContext(ctx, "DELETE FROM roles WHERE name = ?", name)
	if err != nil {
		return fmt.Errorf("crmstore: delete role: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: role %q", crm.ErrNotFound, name)
	}
	return nil
}

// Users lists the logins.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.x.QueryContext(ctx, `SELECT u.id, u.name, u.disabled, coalesce(group_concat(r.role), '')
		FROM users u LEFT JOIN user_roles r ON r.user = u.id GROUP BY u.id ORDER BY u.name`)
	if err != nil {
		return nil, fmt.Errorf("crmstore: users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var id, name, roles string
		var u User
		if err := rows.Scan(&id, &name, &u.Disabled, &roles); err != nil {
			return nil, fmt.Errorf("crmstore: users: %w", err)
		}
		u.ID, _ = crm.ParseID(id)
		u.Name = name
		if roles != "" {
			u.Roles = strings.Split(roles, ",")
			slices.Sort(u.Roles)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// User returns one login by name.
func (s *Store) User(ctx context.Context, name string) (User, error) {
	us, err := s.Users(ctx)
	if err != nil {
		return User{}, err
	}
	for _, u := range us {
		if strings.EqualFold(u.Name, name) {
			return u, nil
		}
	}
	return User{}, fmt.Errorf("%w: user %q", crm.ErrNotFound, name)
}

// AssignRole gives a user a role; RemoveRole takes it away.
func (s *Store) AssignRole(ctx context.Context, userName, role string) error {
	u, err := s.User(ctx, userName)
	if err != nil {
		return err
	}
	return s.Update(ctx, func(tx crmserver.Tx) error { return tx.(*txn).addRole(ctx, u.ID, role) })
}

// RemoveRole takes a role away from a user.
func (s *Store) RemoveRole(ctx context.Context, userName, role string) error {
	u, err := s.User(ctx, userName)
	if err != nil {
		return err
	}
	res, err := s.x.ExecContext(ctx, "DELETE FROM user_roles WHERE user = ? AND role = ?", u.ID.String(), role)
	if err != nil {
		return fmt.Errorf("crmstore: remove role: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: user %q has no role %q", crm.ErrNotFound, u.Name, role)
	}
	return nil
}

// Role returns a role by name.
func (s *Store) Role(ctx context.Context, name string) (crm.Role, error) {
	var def string
	if err := s.x.QueryRowContext(ctx, "SELECT def FROM roles WHERE name = ?", name).Scan(&def); err != nil {
		return crm.Role{}, notFound(err, "role "+name)
	}
	var r crm.Role
	if err := json.Unmarshal([]byte(def), &r); err != nil {
		return crm.Role{}, fmt.Errorf("crmstore: role %s: %w", name, err)
	}
	return r, nil
}

// Roles lists every role.
func (s *Store) Roles(ctx context.Context) ([]crm.Role, error) {
	rows, err := s.x.QueryContext(ctx, "SELECT def FROM roles ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("crmstore: roles: %w", err)
	}
	defer rows.Close()
	var out []crm.Role
	for rows.Next() {
		var def string
		if err := rows.Scan(&def); err != nil {
			return nil, fmt.Errorf("crmstore: roles: %w", err)
		}
		var r crm.Role
		if err := json.Unmarshal([]byte(def), &r); err != nil {
			return nil, fmt.Errorf("crmstore: roles: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SaveRole creates or replaces a role.
func (s *Store) SaveRole(ctx context.Context, r crm.Role) error {
	if !validUserName(r.Name) {
		return fmt.Errorf("%w: role name %q", crm.ErrInvalidArgument, r.Name)
	}
	for _, p := range r.Privileges {
		if !slices.Contains(crmserver.Privileges, p) {
			return fmt.Errorf("%w: privilege %q (want one of %v)", crm.ErrInvalidArgument, p, crmserver.Privileges)
		}
	}
	def, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("crmstore: save role: %w", err)
	}
	if _, err := s.x.ExecContext(ctx, "INSERT INTO roles (name, def) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET def = excluded.def", r.Name, string(def)); err != nil {
		return fmt.Errorf("crmstore: save role: %w", err)
	}
	return nil
}

// dummyHash returns a bcrypt hash at the store's cost, made once. A
// login with an unknown name is compared against it, so that it takes as
// long as a wrong password for a real user and the time tells nothing.
func (s *Store) dummyHash() []byte {
	s.dummyOnce.Do(func() {
		s.dummy, _ = bcrypt.GenerateFromPassword([]byte("pimbridge-dummy-password"), s.bcryptCost())
	})
	return s.dummy
}

// errBadLogin is the one answer to every failed login.
var errBadLogin = fmt.Errorf("%w: bad user name or password", crm.ErrUnauthenticated)

// Authenticate checks a name and password. Unknown names, wrong passwords
// and disabled users all get the same error after the same work.
func (s *Store) Authenticate(ctx context.Context, name, password string) (*crmserver.Principal, error) {
	var id, hash string
	var disabled bool
	err := s.x.QueryRowContext(ctx, "SELECT id, pwhash, disabled FROM users WHERE name = ?", name).Scan(&id, &hash, &disabled)
	if err != nil {
		bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(password))
		if err == errNoRows {
			return nil, errBadLogin
		}
		return nil, fmt.Errorf("crmstore: authenticate: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil || disabled {
		return nil, errBadLogin
	}
	uid, err := crm.ParseID(id)
	if err != nil {
		return nil, fmt.Errorf("crmstore: authenticate: %w", err)
	}
	return s.Principal(ctx, uid)
}

// Principal returns the principal of a user id, with the user's current
// token generation. A disabled or removed user has none:
// crm.ErrUnauthenticated.
func (s *Store) Principal(ctx context.Context, uid crm.ID) (*crmserver.Principal, error) {
	p := &crmserver.Principal{UserID: uid}
	var disabled bool
	err := s.x.QueryRowContext(ctx, "SELECT name, disabled, generation FROM users WHERE id = ?", uid.String()).Scan(&p.Name, &disabled, &p.Generation)
	if err == errNoRows || err == nil && disabled {
		return nil, fmt.Errorf("%w: no such user or user disabled", crm.ErrUnauthenticated)
	}
	if err != nil {
		return nil, fmt.Errorf("crmstore: principal: %w", err)
	}
	rows, err := s.x.QueryContext(ctx, "SELECT r.def FROM user_roles ur JOIN roles r ON r.name = ur.role WHERE ur.user = ? ORDER BY r.name", uid.String())
	if err != nil {
		return nil, fmt.Errorf("crmstore: roles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var def string
		if err := rows.Scan(&def); err != nil {
			return nil, fmt.Errorf("crmstore: roles: %w", err)
		}
		var r crm.Role
		if err := json.Unmarshal([]byte(def), &r); err != nil {
			return nil, fmt.Errorf("crmstore: roles: %w", err)
		}
		p.Roles = append(p.Roles, r)
	}
	return p, rows.Err()
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// IssueToken creates a random bearer token of the user's current
// generation; only its hash is stored. The token dies when the generation
// changes (password change, disabling) or at expiry.
func (s *Store) IssueToken(ctx context.Context, user crm.ID, ttl time.Duration) (string, time.Time, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("crmstore: token: %w", err)
	}
	tok := "pbt_" + base64.RawURLEncoding.EncodeToString(raw[:])
	exp := s.now().Add(ttl).UTC().Truncate(time.Second)
	res, err := s.x.ExecContext(ctx, `INSERT INTO tokens (hash, user, expires, generation)
		SELECT ?, id, ?, generation FROM users WHERE id = ? AND disabled = 0`, tokenHash(tok), unix(exp), user.String())
	if err != nil {
		return "", time.Time{}, fmt.Errorf("crmstore: token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", time.Time{}, fmt.Errorf("%w: no such user or user disabled", crm.ErrUnauthenticated)
	}
	// Expired tokens are of no use to anyone; drop them now and then.
	if _, err := s.x.ExecContext(ctx, "DELETE FROM tokens WHERE expires < ?", unix(s.now())); err != nil {
		return "", time.Time{}, fmt.Errorf("crmstore: token: %w", err)
	}
	return tok, exp, nil
}

// AuthenticateToken checks a bearer token against the user's current
// state: an expired token, one of an older generation or one of a
// disabled user is refused. The principal carries the token's expiry.
func (s *Store) AuthenticateToken(ctx context.Context, tok string) (*crmserver.Principal, error) {
	h := tokenHash(tok)
	var stored, user string
	var exp, gen int64
	err := s.x.QueryRowContext(ctx, "SELECT hash, user, expires, generation FROM tokens WHERE hash = ?", h).Scan(&stored, &user, &exp, &gen)
	if err != nil || subtle.ConstantTimeCompare([]byte(stored), []byte(h)) != 1 || exp < unix(s.now()) {
		if err != nil && err != errNoRows {
			return nil, fmt.Errorf("crmstore: token: %w", err)
		}
		return nil, fmt.Errorf("%w: bad or expired token", crm.ErrUnauthenticated)
	}
	uid, err := crm.ParseID(user)
	if err != nil {
		return nil, fmt.Errorf("crmstore: token: %w", err)
	}
	p, err := s.Principal(ctx, uid)
	if err != nil {
		return nil, err
	}
	if p.Generation != gen {
		return nil, fmt.Errorf("%w: bad or expired token", crm.ErrUnauthenticated)
	}
	p.TokenExpires = time.Unix(exp, 0).UTC()
	return p, nil
}
