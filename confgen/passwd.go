package confgen

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/mqttctl/mqttctl/internal/errs"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/ident"
)

// Password hashing parameters of mosquitto_passwd's $7$ format.
const (
	DefaultIterations = 101
	saltLen           = 12
	// MaxIterations bounds the work of one verification, so that a password
	// file cannot stall the broker: every login, right or wrong, pays it
	// (mosquitto 2.0 writes 101, 2.1 1000; 100,000 is about 60 ms here, as
	// much as mosquitto's argon2id; 1,000,000 let two wrong logins a second
	// lock out every password client, found by the adversarial run).
	MaxIterations = 100_000
	hashLen       = 64
)

// printableSalt returns n random printable ASCII bytes (so the hash can
// later be exported to EMQX, whose import carries the salt as text).
func printableSalt(n int) ([]byte, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("read random salt: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)] // 256 is a multiple of 64: no bias
	}
	return b, nil
}

// HashPassword returns a mosquitto $7$ hash: PBKDF2-HMAC-SHA512 with the
// given iterations (0 means DefaultIterations), a 12-byte salt and a 64-byte key.
func HashPassword(password []byte, iterations int) (string, error) {
	if len(password) == 0 {
		return "", errors.New("empty password: mosquitto refuses empty passwords")
	}
	if iterations == 0 {
		iterations = DefaultIterations
	}
	if iterations < 1 || iterations > MaxIterations {
		return "", fmt.Errorf("iterations must be from 1 to %d, not %d", MaxIterations, iterations)
	}
	salt, err := printableSalt(saltLen)
	if err != nil {
		return "", err
	}
	key, err := pbkdf2.Key(sha512.New, string(password), salt, iterations, hashLen)
	if err != nil {
		return "", fmt.Errorf("derive key: %w", err)
	}
	return fmt.Sprintf("$7$%d$%s$%s", iterations, base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(key)), nil
}

// IterationsError is the kind of problem of a hash whose iteration count
// is not the one wanted (EMQX has one count per authenticator): setting the
// password again with Want iterations fixes it.
type IterationsError struct{ Want int }

func (e *IterationsError) Error() string {
	return fmt.Sprintf("the password needs a hash of %d iterations", e.Want)
}

// Hash is a parsed password hash, ready to verify.
type Hash struct {
	Kind       int    // 6, 7, or KindArgon2id
	Iterations int    // $7$: PBKDF2 iterations; argon2id: passes (t)
	Memory     uint32 // argon2id: KiB (m)
	Lanes      uint8  // argon2id: parallelism (p)
	Salt       []byte
	Key        []byte
}

// KindArgon2id is the Kind of a "$argon2id$" hash (mosquitto 2.1 built
// with argon2).
const KindArgon2id = 2

// Bounds on a hash's work, so that a password file cannot stall or
// exhaust the broker: a login verifies a hash.
// A login's check costs about m*t (memory times passes): mosquitto 2.1's
// own hashes are 46 MiB x 1; RFC 9106's second recommendation, 64 MiB x 3,
// fits; a 1 GiB hash would let four wrong passwords take 4 GiB and every
// login slot for seconds (found by the adversarial run).
const (
	maxArgonMemory = 1 << 18 // KiB: 256 MiB
	maxArgonPasses = 16
	maxArgonLanes  = 8
	maxArgonWork   = 1 << 19 // KiB x passes: 512 MiB-passes, 11 times mosquitto's
)

// ParseHash decodes "$6$salt$hash", "$7$iter$salt$hash" and
// "$argon2id$v=19$m=M,t=T,p=P$salt$hash" with mosquitto's rules: base64
// with padding, a 12-byte (mosquitto 2.0) or 64-byte (2.1) salt and a
// 64-byte hash for $6$ and $7$; argon2's encoding (base64 without padding)
// for argon2id, as libargon2 checks it.
func ParseHash(s string) (Hash, error) {
	if strings.HasPrefix(s, "$argon2") {
		return parseArgon2id(s)
	}
	parts := strings.Split(s, "$")
	if len(parts) < 4 || parts[0] != "" {
		return Hash{}, errors.New("not a mosquitto password hash ($6$, $7$ or $argon2id$)")
	}
	var h Hash
	switch parts[1] {
	case "6":
		if len(parts) != 4 {
			return Hash{}, errors.New("malformed $6$ hash: want $6$salt$hash")
		}
		h.Kind = 6
		parts = parts[2:]
	case "7":
		if len(parts) != 5 {
			return Hash{}, errors.New("malformed $7$ hash: want $7$iterations$salt$hash")
		}
		n, err := strconv.Atoi(parts[2])
		if err != nil || n < 1 {
			return Hash{}, fmt.Errorf("malformed $7$ hash: bad iteration count %q", parts[2])
		}
		if n > MaxIterations {
			return Hash{}, fmt.Errorf("iteration count %d is above mqttctl's limit of %d", n, MaxIterations)
		}
		h.Kind, h.Iterations = 7, n
		parts = parts[3:]
	default:
		return Hash{}, fmt.Errorf("unknown hash type $%s$", parts[1])
	}
	var err error
	if h.Salt, err = base64.StdEncoding.DecodeString(parts[0]); err != nil {
		return Hash{}, fmt.Errorf("salt is not base64: %w", err)
	}
	if h.Key, err = base64.StdEncoding.DecodeString(parts[1]); err != nil {
		return Hash{}, fmt.Errorf("hash is not base64: %w", err)
	}
	if len(h.Salt) != saltLen && len(h.Salt) != hashLen {
		return Hash{}, fmt.Errorf("salt is %d bytes; mosquitto requires %d (2.0) or %d (2.1)", len(h.Salt), saltLen, hashLen)
	}
	if len(h.Key) != hashLen {
		return Hash{}, fmt.Errorf("hash is %d bytes; mosquitto requires %d", len(h.Key), hashLen)
	}
	return h, nil
}

// Verify reports whether password matches, in constant time. An empty
// password never matches.
func (h Hash) Verify(password []byte) bool {
	if len(password) == 0 {
		return false
	}
	var got []byte
	switch h.Kind {
	case 6:
		d := sha512.New()
		d.Write(password)
		d.Write(h.Salt)
		got = d.Sum(nil)
	case 7:
		k, err := pbkdf2.Key(sha512.New, string(password), h.Salt, h.Iterations, hashLen)
		if err != nil {
			return false
		}
		got = k
	case KindArgon2id:
		got = argon2.IDKey(password, h.Salt, uint32(h.Iterations), h.Memory, h.Lanes, uint32(len(h.Key)))
	default:
		return false
	}
	return subtle.ConstantTimeCompare(got, h.Key) == 1
}

// Equal reports whether two hashes are the same (the same password
// matches both).
func (h Hash) Equal(o Hash) bool {
	return h.Kind == o.Kind && h.Iterations == o.Iterations && h.Memory == o.Memory && h.Lanes == o.Lanes &&
		bytes.Equal(h.Salt, o.Salt) && bytes.Equal(h.Key, o.Key)
}

// String names the hash's kind and cost, as passwd list shows it.
func (h Hash) String() string {
	switch h.Kind {
	case KindArgon2id:
		return fmt.Sprintf("$argon2id$ m=%d KiB t=%d p=%d", h.Memory, h.Iterations, h.Lanes)
	case 7:
		return fmt.Sprintf("$7$ %d iterations, %d-byte salt", h.Iterations, len(h.Salt))
	}
	return fmt.Sprintf("$%d$", h.Kind)
}

// parseArgon2id decodes libargon2's encoding as mosquitto 2.1 writes it:
// $argon2id$v=19$m=47104,t=1,p=1$SALT$HASH (base64 without padding).
func parseArgon2id(s string) (Hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		if len(parts) > 1 && parts[1] != "argon2id" {
			return Hash{}, fmt.Errorf("unknown hash type $%s$ (mosquitto reads $argon2id$ only)", parts[1])
		}
		return Hash{}, errors.New("malformed $argon2id$ hash: want $argon2id$v=19$m=M,t=T,p=P$salt$hash")
	}
	if parts[2] != "v=19" {
		return Hash{}, fmt.Errorf("argon2id version %q: mosquitto writes v=19", parts[2])
	}
	var m, t, p uint64
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); n != 3 || err != nil || fmt.Sprintf("m=%d,t=%d,p=%d", m, t, p) != parts[3] {
		return Hash{}, fmt.Errorf("malformed argon2id parameters %q: want m=MEMORY,t=PASSES,p=LANES", parts[3])
	}
	if m < 8*p || m > maxArgonMemory || t < 1 || t > maxArgonPasses || p < 1 || p > maxArgonLanes || m*t > maxArgonWork {
		return Hash{}, fmt.Errorf("argon2id parameters %s are outside mqttctl's limits (m from 8p to %d KiB, t from 1 to %d, p from 1 to %d, m*t at most %d): every login, right or wrong, verifies the hash; set the password again with mqttctl passwd add --hash argon2id (mosquitto's m=47104,t=1,p=1)",
			parts[3], maxArgonMemory, maxArgonPasses, maxArgonLanes, maxArgonWork)
	}
	h := Hash{Kind: KindArgon2id, Iterations: int(t), Memory: uint32(m), Lanes: uint8(p)}
	var err error
	if h.Salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil || len(h.Salt) < 8 {
		return Hash{}, fmt.Errorf("argon2id salt is not base64 of at least 8 bytes")
	}
	if h.Key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil || len(h.Key) < 4 || len(h.Key) > 1024 {
		return Hash{}, fmt.Errorf("argon2id hash is not base64 of 4 to 1024 bytes")
	}
	return h, nil
}

// Argon2id parameters mosquitto 2.1 uses (libcommon/password_common.c).
const (
	argonMemory = 47104 // KiB
	argonPasses = 1
	argonLanes  = 1
)

// HashArgon2id returns a mosquitto 2.1 "$argon2id$" hash of password with
// mosquitto's parameters (46 MiB, one pass, one lane) and 64-byte salt and
// hash. Only mosquitto 2.1 built with argon2 (and mqttctl) reads it.
func HashArgon2id(password []byte) (string, error) {
	if len(password) == 0 {
		return "", errors.New("empty password: mosquitto refuses empty passwords")
	}
	salt := make([]byte, hashLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read random salt: %w", err)
	}
	key := argon2.IDKey(password, salt, argonPasses, argonMemory, argonLanes, hashLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", argonMemory, argonPasses, argonLanes,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// PasswordLine is one line of a password file. Lines mqttctl does not
// understand keep their text and are written back unchanged.
type PasswordLine struct {
	Raw  string // the line as read, without the newline
	User string // "" for comments, blank and unparsable lines
	Hash string
	Err  error // why a user line's hash is unusable, if it is
	Line int
}

// ErrEmptyUsername is the Err of a password line with nothing before its
// ':'. mosquitto 2.1 refuses such a file at start and quits on it on
// SIGHUP ("Invalid line in password file").
var ErrEmptyUsername = errors.New("a line with an empty username (nothing before ':'): mosquitto 2.1 refuses the file; delete the line")

// PasswordFile is a mosquitto password file.
type PasswordFile struct {
	Lines []PasswordLine
}

// ParsePasswordFile reads password-file text with mosquitto's rules: lines
// starting with '#' and lines without ':' are skipped (but kept), white space
// and CRLF are tolerated, and a duplicate user's last line wins.
func ParsePasswordFile(data []byte) *PasswordFile {
	pf := &PasswordFile{}
	text := string(data)
	text = strings.TrimRight(text, "\r\n") // trailing blank lines are dropped
	if text == "" {
		return pf
	}
	for i, raw := range strings.Split(text, "\n") {
		raw = strings.TrimRight(raw, "\r") // CRLF files are rewritten with LF
		l := PasswordLine{Raw: raw, Line: i + 1}
		t := strings.TrimSpace(raw)
		if t != "" && !strings.HasPrefix(t, "#") {
			if user, hash, ok := strings.Cut(t, ":"); ok {
				l.User, l.Hash = strings.TrimSpace(user), strings.TrimSpace(hash)
				if l.User == "" {
					l.Err = ErrEmptyUsername
				} else if _, err := ParseHash(l.Hash); err != nil {
					l.Err = err
				}
			}
		}
		pf.Lines = append(pf.Lines, l)
	}
	return pf
}

// Lookup returns the hash of user (the last line wins).
func (pf *PasswordFile) Lookup(user string) (string, bool) {
	for i := len(pf.Lines) - 1; i >= 0; i-- {
		if l := pf.Lines[i]; l.User == user {
			return l.Hash, true
		}
	}
	return "", false
}

// Users lists the users in file order, each once.
func (pf *PasswordFile) Users() []string {
	var out []string
	for _, l := range pf.Lines {
		if l.User != "" && !slices.Contains(out, l.User) {
			out = append(out, l.User)
		}
	}
	return out
}

// Set replaces user's hash on its last line (dropping earlier duplicates,
// which mosquitto ignores anyway) or appends a line.
func (pf *PasswordFile) Set(user, hash string) {
	last := -1
	for i, l := range pf.Lines {
		if l.User == user {
			last = i
		}
	}
	nl := PasswordLine{Raw: user + ":" + hash, User: user, Hash: hash}
	if last < 0 {
		pf.Lines = append(pf.Lines, nl)
		return
	}
	out := pf.Lines[:0]
	for i, l := range pf.Lines {
		switch {
		case i == last:
			out = append(out, nl)
		case l.User == user:
		default:
			out = append(out, l)
		}
	}
	pf.Lines = out
}

// Delete removes every line of user and reports whether there was one.
func (pf *PasswordFile) Delete(user string) bool {
	n := len(pf.Lines)
	pf.Lines = slices.DeleteFunc(pf.Lines, func(l PasswordLine) bool { return l.User == user })
	return len(pf.Lines) != n
}

// Unparsed returns the lines that are neither a user line with a valid hash
// nor empty: comments, lines without ':', malformed hashes.
func (pf *PasswordFile) Unparsed() []PasswordLine {
	var out []PasswordLine
	for _, l := range pf.Lines {
		if (l.User == "" && strings.TrimSpace(l.Raw) != "") || l.Err != nil {
			out = append(out, l)
		}
	}
	return out
}

// Marshal renders the file, one line each, unknown lines unchanged.
func (pf *PasswordFile) Marshal() []byte {
	var b bytes.Buffer
	for _, l := range pf.Lines {
		b.WriteString(l.Raw)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Verify checks user's password against the file. It returns false for an
// unknown user, a malformed hash or a wrong password.
func (pf *PasswordFile) Verify(user string, password []byte) bool {
	h, ok := pf.Lookup(user)
	if !ok {
		return false
	}
	ph, err := ParseHash(h)
	if err != nil {
		return false
	}
	return ph.Verify(password)
}

// ReadPasswordFile reads and parses a password file.
func ReadPasswordFile(path string) (*PasswordFile, error) {
	data, err := readBounded(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &MissingFileError{Kind: "password", Path: path, Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("read password file: %w", err)
	}
	return ParsePasswordFile(data), nil
}

// readBounded reads a file of at most fsx.MaxEditSize bytes, the bound of
// every password file mqttctl edits: a larger file (or /dev/zero) is
// refused, naming it, instead of filling memory.
func readBounded(path string) ([]byte, error) { return fsx.ReadRegular(path, fsx.MaxEditSize) }

// EditPasswordFile changes a password file through fsx.Edit (locked,
// atomic, mode, owner and group kept; a new file is 0600): it parses the
// file, lets fn change it and writes it back. Nothing is written when fn
// returns an error.
func EditPasswordFile(path string, create bool, fn func(*PasswordFile) error) error {
	check := func(data []byte) error {
		if bytes.Contains(data, []byte("-----BEGIN ")) {
			return fmt.Errorf("%s holds PEM data (a key or a certificate), not mosquitto passwords: give the password file's path", path)
		}
		return nil
	}
	err := fsx.Edit(path, create, check, func(data []byte) ([]byte, error) {
		pf := ParsePasswordFile(data)
		if err := fn(pf); err != nil {
			return nil, err
		}
		return pf.Marshal(), nil
	})
	if errors.Is(err, fsx.ErrNotExist) {
		return errs.Wrap(err, fmt.Sprintf("%s does not exist", path), ErrNoFile)
	}
	return err
}

// ErrNoFile is wrapped by the error for a password or ACL file that must
// exist and does not.
var ErrNoFile = fs.ErrNotExist

// MissingFileError is a password or ACL file that a command reads and
// that does not exist; it matches ErrNoFile.
type MissingFileError struct {
	Kind string // "ACL" or "password"
	Path string
	Err  error
}

func (e *MissingFileError) Error() string {
	return fmt.Sprintf("read %s file: %s does not exist", e.Kind, e.Path)
}

func (e *MissingFileError) Unwrap() error { return e.Err }

// HashPlain replaces every plain "user:password" line with the user's $7$
// hash (the password is everything after the first ':', so it may hold
// ':'). name is used in errors, which give the line. It refuses a file that
// already holds a hash, so that nothing is hashed twice, and any username
// that breaks the identity rule; on error pf is unchanged.
func (pf *PasswordFile) HashPlain(name string, iterations int) (int, error) {
	out := slices.Clone(pf.Lines)
	n := 0
	for i, l := range out {
		if l.User == "" {
			continue
		}
		if _, err := ParseHash(l.Hash); err == nil || strings.HasPrefix(l.Hash, "$6$") || strings.HasPrefix(l.Hash, "$7$") {
			return 0, fmt.Errorf("%s:%d: user %s already has a hash; only plain user:password lines are hashed (nothing was changed)", name, l.Line, l.User)
		}
		if err := ident.Validate(l.User); err != nil {
			return 0, fmt.Errorf("%s:%d: %w", name, l.Line, err)
		}
		_, plain, _ := strings.Cut(strings.TrimSpace(l.Raw), ":")
		h, err := HashPassword([]byte(plain), iterations)
		if err != nil {
			return 0, fmt.Errorf("%s:%d: user %s: %w", name, l.Line, l.User, err)
		}
		out[i] = PasswordLine{Raw: l.User + ":" + h, User: l.User, Hash: h, Line: l.Line}
		n++
	}
	pf.Lines = out
	return n, nil
}

// ImportPlain hashes a file of plain user:password lines: in place through
// EditPasswordFile (locked, mode and owner kept) when out is "", else into
// a new file out (0600, never replacing one). It returns how many users it
// hashed.
func ImportPlain(in, out string, iterations int) (int, error) {
	var n int
	if out == "" {
		err := EditPasswordFile(in, false, func(pf *PasswordFile) error {
			var err error
			n, err = pf.HashPlain(in, iterations)
			return err
		})
		return n, err
	}
	data, n, err := HashPlainFile(in, iterations)
	if err != nil {
		return 0, err
	}
	return n, fsx.WriteFile(out, data, 0o600, false)
}

// HashPlainFile returns a file of plain user:password lines with every
// password hashed, and how many it hashed; it writes nothing.
func HashPlainFile(in string, iterations int) ([]byte, int, error) {
	data, err := readBounded(in)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", in, err)
	}
	pf := ParsePasswordFile(data)
	n, err := pf.HashPlain(in, iterations)
	if err != nil {
		return nil, 0, err
	}
	return pf.Marshal(), n, nil
}
