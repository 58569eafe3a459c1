package broker

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mqttctl/mqttctl/internal/fsx"
)

// TLS session tickets let a client that reconnects (after a broker restart,
// say) resume its TLS session: no certificate signature or chain to check,
// a fraction of a full handshake. The client's certificate comes from the
// ticket and is checked against the CRL on every resumption
// (tlsState.checkCRL); an expired one is not resumed.
//
// With persistence, the keys that encrypt tickets are kept in
// PERSISTENCE_FILE.tickets (mode 0600) so that tickets survive a restart:
// a new key every TicketKeyRotation, keys kept for TicketKeyLifetime (a
// ticket lives at most 7 days). Without persistence, Go's in-memory keys
// are used (tickets do not survive a restart).
const (
	TicketKeyRotation = 24 * time.Hour
	TicketKeyLifetime = 8 * 24 * time.Hour
)

type ticketKey struct {
	created time.Time
	key     [32]byte
}

// ticketKeys manages the ticket key file.
type ticketKeys struct {
	path string
	keys []ticketKey // newest first
}

// loadTicketKeys reads the key file (missing: no keys). A file that is not
// mqttctl's, or that others may read, is an error naming the fix.
func loadTicketKeys(path string) (*ticketKeys, error) {
	tk := &ticketKeys{path: path}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return tk, nil
	}
	if err != nil {
		return nil, fmt.Errorf("TLS ticket keys %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("TLS ticket keys %s: mode %04o lets others read the keys that protect resumed sessions: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("TLS ticket keys %s: %w", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		created, key, ok := strings.Cut(text, " ")
		secs, err := strconv.ParseInt(created, 10, 64)
		raw, herr := hex.DecodeString(key)
		if !ok || err != nil || herr != nil || len(raw) != 32 {
			return nil, fmt.Errorf("%s:%d: not a ticket key line (UNIX-TIME 64-HEX-DIGITS); the file is damaged: remove it (clients then make one full handshake) and restart", path, line)
		}
		k := ticketKey{created: time.Unix(secs, 0)}
		copy(k.key[:], raw)
		tk.keys = append(tk.keys, k)
	}
	return tk, nil
}

// rotate adds a key when the newest is older than TicketKeyRotation (or
// there is none) and drops those older than TicketKeyLifetime; it writes
// the file when anything changed. It reports whether it did.
func (tk *ticketKeys) rotate(now time.Time) (bool, error) {
	changed := false
	if len(tk.keys) == 0 || now.Sub(tk.keys[0].created) >= TicketKeyRotation {
		k := ticketKey{created: now}
		if _, err := rand.Read(k.key[:]); err != nil {
			return false, err
		}
		tk.keys = append([]ticketKey{k}, tk.keys...)
		changed = true
	}
	kept := tk.keys[:0]
	for _, k := range tk.keys {
		if now.Sub(k.created) < TicketKeyLifetime {
			kept = append(kept, k)
		} else {
			changed = true
		}
	}
	tk.keys = kept
	if !changed {
		return false, nil
	}
	var buf bytes.Buffer
	buf.WriteString("# mqttctl serve: TLS session ticket keys, newest first (UNIX-TIME KEY). Secret: keep 0600.\n")
	for _, k := range tk.keys {
		fmt.Fprintf(&buf, "%d %s\n", k.created.Unix(), hex.EncodeToString(k.key[:]))
	}
	if err := fsx.WriteFile(tk.path, buf.Bytes(), 0o600, true); err != nil {
		return false, fmt.Errorf("TLS ticket keys: %w", err)
	}
	return true, nil
}

// apply sets the keys on every TLS listener: the newest encrypts new
// tickets, all decrypt.
func (tk *ticketKeys) apply(confs []*tls.Config) {
	keys := make([][32]byte, len(tk.keys))
	for i, k := range tk.keys {
		keys[i] = k.key
	}
	for _, c := range confs {
		c.SetSessionTicketKeys(keys)
	}
}
