package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/mqttctl/mqttctl/internal/errs"
	"github.com/mqttctl/mqttctl/internal/ident"
)

// TokensFile holds the one-time enrolment tokens of a pki directory: only
// a SHA-256 of each token is kept (a token is 256 random bits, so a plain
// hash cannot be reversed by guessing). Mode 0600, written with the index
// in the directory's journaled transaction.
const TokensFile = "tokens.json"

// Token limits.
const (
	DefaultTokenTTL = 24 * time.Hour
	MaxTokenTTL     = 400 * 24 * time.Hour
	tokenBytes      = 32
)

// Token is one enrolment token as tokens.json records it; the secret
// itself is never stored.
type Token struct {
	Name    string    `json:"name"`
	Profile Profile   `json:"profile"`
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// Replace lets the enrolment supersede a current certificate of the
	// name (the token was made with force).
	Replace   bool      `json:"replace,omitempty"`
	UsedAt    time.Time `json:"used_at,omitzero"`
	Serial    string    `json:"serial,omitempty"` // of the certificate it was redeemed for
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// StatusAt is used, revoked, expired or unused.
func (t *Token) StatusAt(now time.Time) string {
	switch {
	case !t.UsedAt.IsZero():
		return "used"
	case !t.RevokedAt.IsZero():
		return "revoked"
	case !now.Before(t.Expires):
		return "expired"
	}
	return "unused"
}

type tokenFile struct {
	Version int     `json:"version"`
	Tokens  []Token `json:"tokens"`
}

// Errors of token commands (errors.Is).
var (
	// ErrTokenExists: the name already has an unused token.
	ErrTokenExists = errors.New("the name already has an unused token")
	// ErrTokenInvalid: a token that is unknown, wrong, used, revoked or
	// expired. Its message never says which, to whom it may concern.
	ErrTokenInvalid = errors.New("invalid enrolment token")
)

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// loadTokens reads tokens.json (missing: none) under the caller's lock.
func (d *Dir) loadTokens() (*tokenFile, error) {
	path := d.path(TokensFile)
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &tokenFile{Version: 1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	var tf tokenFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tf); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v): restore it from a backup, or move it away and make the unused tokens again", path, err)
	}
	if tf.Version != 1 {
		return nil, fmt.Errorf("%s has version %d; this mqttctl reads version 1", path, tf.Version)
	}
	for i, t := range tf.Tokens {
		if t.Name == "" || len(t.SHA256) != 64 || t.Expires.IsZero() {
			return nil, fmt.Errorf("%s: token %d (%q) is incomplete (the file looks truncated or edited)", path, i+1, t.Name)
		}
	}
	return &tf, nil
}

// stageTokens adds tokens.json to the transaction.
func (s *state) stageTokens(tf *tokenFile) error {
	data, err := json.MarshalIndent(tf, "", "  ")
	if err != nil {
		return err
	}
	return s.txn.Add(s.d.path(TokensFile), append(data, '\n'), 0o600, true)
}

// unused returns the index of name's unused token, or -1.
func (tf *tokenFile) unused(name string, now time.Time) int {
	for i := range tf.Tokens {
		if tf.Tokens[i].Name == name && tf.Tokens[i].StatusAt(now) == "unused" {
			return i
		}
	}
	return -1
}

// TokenOptions configures Dir.CreateTokens.
type TokenOptions struct {
	Names   []string
	Profile Profile // only client
	TTL     time.Duration
	// Force replaces a name's unused token, and allows a name that already
	// has a current client certificate: the enrolment then supersedes it
	// (the old certificate stays valid until revoked or expired).
	Force bool
}

// NewToken is a made token: its secret is shown once.
type NewToken struct {
	Name, Secret string
	Expires      time.Time
}

// CreateTokens makes one enrolment token per name, all or none, and
// records their hashes. The secrets are returned and never stored.
func (d *Dir) CreateTokens(o TokenOptions) ([]NewToken, error) {
	if o.Profile == "" {
		o.Profile = ProfileClient
	}
	if o.Profile != ProfileClient {
		return nil, fmt.Errorf("profile %q: enrolment tokens are for client certificates (profile client)", o.Profile)
	}
	if o.TTL == 0 {
		o.TTL = DefaultTokenTTL
	}
	if o.TTL < time.Minute || o.TTL > MaxTokenTTL {
		return nil, fmt.Errorf("a token's lifetime must be from 1m to %dd, not %s", int(MaxTokenTTL/(24*time.Hour)), days(o.TTL))
	}
	if len(o.Names) == 0 {
		return nil, errors.New("no names")
	}
	seen := map[string]bool{}
	for _, n := range o.Names {
		if err := ident.ValidateNew(n); err != nil {
			return nil, fmt.Errorf("token name: %w", err)
		}
		if isPrev(n + ".crt") {
			return nil, fmt.Errorf("token name %q: names ending in %q are kept for the certificates renew replaces; choose another name", n, prevSuffix)
		}
		if seen[n] {
			return nil, fmt.Errorf("%q is named twice", n)
		}
		seen[n] = true
	}
	if !fileExists(d.path(RootCertFile)) {
		return nil, noCA(d.Path)
	}
	s, err := d.begin()
	if err != nil {
		return nil, err
	}
	defer s.end()
	tf, err := d.loadTokens()
	if err != nil {
		return nil, err
	}
	now := d.now().UTC().Truncate(time.Second)
	var out []NewToken
	for _, n := range o.Names {
		if i := tf.unused(n, now); i >= 0 {
			if !o.Force {
				return nil, errs.New(fmt.Sprintf("%s already has an unused token (until %s): revoke it first, or replace it", n, tf.Tokens[i].Expires.Format(time.RFC3339)), ErrTokenExists, ErrNeedsForce)
			}
			tf.Tokens[i].RevokedAt = now
		}
		if err := s.checkIdentityFree(n, ClientsDir+"/"+n+".crt.token", o.Force); err != nil {
			return nil, err
		}
		if e := s.idx.find(ClientsDir + "/" + n + ".crt"); e != nil && e.Status != "revoked" && now.Before(e.NotAfter) && !o.Force {
			return nil, errs.New(fmt.Sprintf("%s already has a certificate (%s, until %s)", n, e.Cert, e.NotAfter.Format(time.DateOnly)), ErrIdentityInUse, ErrNeedsForce)
		}
		b := make([]byte, tokenBytes)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		secret := base64.RawURLEncoding.EncodeToString(b)
		tf.Tokens = append(tf.Tokens, Token{Name: n, Profile: o.Profile, SHA256: hashToken(secret), Created: now, Expires: now.Add(o.TTL), Replace: o.Force})
		out = append(out, NewToken{Name: n, Secret: secret, Expires: now.Add(o.TTL)})
	}
	if err := s.stageTokens(tf); err != nil {
		return nil, err
	}
	if err := s.commit(); err != nil {
		return nil, err
	}
	return out, nil
}

// Tokens lists the tokens (without secrets).
func (d *Dir) Tokens() ([]Token, error) {
	unlock, err := lockAndRecover(d, &Report{})
	if err != nil {
		return nil, err
	}
	defer unlock()
	tf, err := d.loadTokens()
	if err != nil {
		return nil, err
	}
	return tf.Tokens, nil
}

// RevokeToken revokes name's unused token.
func (d *Dir) RevokeToken(name string) error {
	s, err := d.begin()
	if err != nil {
		return err
	}
	defer s.end()
	tf, err := d.loadTokens()
	if err != nil {
		return err
	}
	now := d.now().UTC().Truncate(time.Second)
	i := tf.unused(name, now)
	if i < 0 {
		return errs.New(fmt.Sprintf("%s has no unused token (enroll token list shows them)", name), ErrNotFound)
	}
	tf.Tokens[i].RevokedAt = now
	if err := s.stageTokens(tf); err != nil {
		return err
	}
	return s.commit()
}

// TokenRepeatWindow: an enrolment by token whose answer the device did
// not get (a lost response, a crash) is answered again, with the same
// certificate, when the same token asks for the key it certified within
// this long of its use.
const TokenRepeatWindow = time.Hour

// usedRecently returns name's token for secret when it was used for a
// certificate less than TokenRepeatWindow ago; otherwise nil.
func (tf *tokenFile) usedRecently(name, secret string, now time.Time) *Token {
	want := hashToken(secret)
	for i := range tf.Tokens {
		t := &tf.Tokens[i]
		if t.Name == name && subtle.ConstantTimeCompare([]byte(t.SHA256), []byte(want)) == 1 &&
			!t.UsedAt.IsZero() && t.Serial != "" && now.Sub(t.UsedAt) < TokenRepeatWindow {
			return t
		}
	}
	return nil
}

// redeem finds name's token for secret and marks it used (in tf; the
// caller stages it). Any failure is ErrTokenInvalid with a reason for the
// log only.
func (tf *tokenFile) redeem(name, secret string, now time.Time) (*Token, error) {
	want := hashToken(secret)
	var found *Token
	for i := range tf.Tokens {
		t := &tf.Tokens[i]
		if t.Name == name && subtle.ConstantTimeCompare([]byte(t.SHA256), []byte(want)) == 1 {
			found = t
		}
	}
	if found == nil {
		return nil, errs.New("no token of that name matches", ErrTokenInvalid)
	}
	if st := found.StatusAt(now); st != "unused" {
		return nil, errs.New("the token is "+st, ErrTokenInvalid)
	}
	return found, nil
}

// ReadNames reads a devices file: one name per line, its first
// comma-separated field; blank lines and lines starting with # are
// skipped. A bad line is named by its number.
func ReadNames(r io.Reader, file string) ([]string, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBatchFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	// The same file as pki issue client --batch, read by the same rules
	// (a header, a byte order mark, duplicates, bad names: FILE:LINE).
	devs, err := ParseBatch(file, data)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(devs))
	for i, d := range devs {
		names[i] = d.Name
	}
	return names, nil
}

// tokenMayMatch reports, without the directory's lock, whether name has an
// unused token whose hash is secret's: a wrong guess is then refused
// without waiting for the lock or reading the index, so guessing does not
// hold up real enrolments. Only a "no" is final: a "yes" is decided again
// under the lock. While a change is journaled (a crash is to be completed)
// it answers yes.
func (d *Dir) tokenMayMatch(name, secret string) bool {
	if fileExists(d.path(JournalFile)) {
		return true
	}
	tf, err := d.loadTokens()
	if err != nil {
		return true // the locked path reports it
	}
	_, err = tf.redeem(name, secret, d.now())
	return err == nil || tf.usedRecently(name, secret, d.now()) != nil
}

// days writes a duration in whole days when it is whole days (401d), else
// as time.Duration does.
func days(d time.Duration) string {
	if day := 24 * time.Hour; d >= day && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}
