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
		if _, err := s.db.ExecContext(ctx, "INSERT OR IGNORE INTO roles (name, def) VALUES (?, ?)", r.Name, string(def)); err != nil {
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
	cost := s.cost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
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

// SetPassword replaces a user's password.
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	if len(password) < 8 || len(password) > 72 {
		return fmt.Errorf("%w: password must have 8 to 72 bytes", crm.ErrInvalidArgument)
	}
	cost := s.cost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return fmt.Errorf("crmstore: hash password: %w", err)
	}
	res, err := s.db.ExecContext(ctx, "UPDATE users SET pwhash = ? WHERE name = ?", string(hash), name)
	if err != nil {
		return fmt.Errorf("crmstore: set password: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: user %q", crm.ErrNotFound, name)
	}
	return nil
}

// Users lists the logins.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT u.id, u.name, u.disabled, coalesce(group_concat(r.role), '')
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
	if _, err := s.db.ExecContext(ctx, "DELETE FROM user_roles WHERE user = ? AND role = ?", u.ID.String(), role); err != nil {
		return fmt.Errorf("crmstore: remove role: %w", err)
	}
	return nil
}

// Role returns a role by name.
func (s *Store) Role(ctx context.Context, name string) (crmserver.Role, error) {
	var def string
	if err := s.db.QueryRowContext(ctx, "SELECT def FROM roles WHERE name = ?", name).Scan(&def); err != nil {
		return crmserver.Role{}, notFound(err, "role "+name)
	}
	var r crmserver.Role
	if err := json.Unmarshal([]byte(def), &r); err != nil {
		return crmserver.Role{}, fmt.Errorf("crmstore: role %s: %w", name, err)
	}
	return r, nil
}

// Roles lists every role.
func (s *Store) Roles(ctx context.Context) ([]crmserver.Role, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT def FROM roles ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("crmstore: roles: %w", err)
	}
	defer rows.Close()
	var out []crmserver.Role
	for rows.Next() {
		var def string
		if err := rows.Scan(&def); err != nil {
			return nil, fmt.Errorf("crmstore: roles: %w", err)
		}
		var r crmserver.Role
		if err := json.Unmarshal([]byte(def), &r); err != nil {
			return nil, fmt.Errorf("crmstore: roles: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SaveRole creates or replaces a role.
func (s *Store) SaveRole(ctx context.Context, r crmserver.Role) error {
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
	if _, err := s.db.ExecContext(ctx, "INSERT INTO roles (name, def) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET def = excluded.def", r.Name, string(def)); err != nil {
		return fmt.Errorf("crmstore: save role: %w", err)
	}
	return nil
}

// dummyHash is compared against when the user does not exist, so that the
// time of a failed login does not tell whether the name exists.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("pimbridge-dummy-password"), bcrypt.MinCost)

// Authenticate checks a name and password.
func (s *Store) Authenticate(ctx context.Context, name, password string) (*crmserver.Principal, error) {
	var id, hash string
	var disabled bool
	err := s.db.QueryRowContext(ctx, "SELECT id, pwhash, disabled FROM users WHERE name = ?", name).Scan(&id, &hash, &disabled)
	if err != nil {
		bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		if err == errNoRows {
			return nil, fmt.Errorf("%w: bad user name or password", crm.ErrUnauthenticated)
		}
		return nil, fmt.Errorf("crmstore: authenticate: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil || disabled {
		return nil, fmt.Errorf("%w: bad user name or password", crm.ErrUnauthenticated)
	}
	uid, err := crm.ParseID(id)
	if err != nil {
		return nil, fmt.Errorf("crmstore: authenticate: %w", err)
	}
	return s.Principal(ctx, uid)
}

// Principal returns the principal of a user id.
func (s *Store) Principal(ctx context.Context, uid crm.ID) (*crmserver.Principal, error) {
	p := &crmserver.Principal{UserID: uid}
	if err := s.db.QueryRowContext(ctx, "SELECT name FROM users WHERE id = ?", uid.String()).Scan(&p.Name); err != nil {
		return nil, notFound(err, "user")
	}
	rows, err := s.db.QueryContext(ctx, "SELECT r.def FROM user_roles ur JOIN roles r ON r.name = ur.role WHERE ur.user = ? ORDER BY r.name", uid.String())
	if err != nil {
		return nil, fmt.Errorf("crmstore: roles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var def string
		if err := rows.Scan(&def); err != nil {
			return nil, fmt.Errorf("crmstore: roles: %w", err)
		}
		var r crmserver.Role
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

// IssueToken creates a random bearer token; only its hash is stored.
func (s *Store) IssueToken(ctx context.Context, user crm.ID, ttl time.Duration) (string, time.Time, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("crmstore: token: %w", err)
	}
	tok := "pbt_" + base64.RawURLEncoding.EncodeToString(raw[:])
	exp := s.now().Add(ttl).UTC().Truncate(time.Second)
	if _, err := s.db.ExecContext(ctx, "INSERT INTO tokens (hash, user, expires) VALUES (?, ?, ?)", tokenHash(tok), user.String(), unix(exp)); err != nil {
		return "", time.Time{}, fmt.Errorf("crmstore: token: %w", err)
	}
	return tok, exp, nil
}

// AuthenticateToken checks a bearer token.
func (s *Store) AuthenticateToken(ctx context.Context, tok string) (*crmserver.Principal, error) {
	h := tokenHash(tok)
	var stored, user string
	var exp int64
	err := s.db.QueryRowContext(ctx, "SELECT hash, user, expires FROM tokens WHERE hash = ?", h).Scan(&stored, &user, &exp)
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
	return s.Principal(ctx, uid)
}
