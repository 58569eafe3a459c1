package broker

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mqttctl/mqttctl/broker/persist"
	"github.com/mqttctl/mqttctl/internal/fsx"
)

// TLS session tickets let a client that reconnects (after a broker restart,
// say) resume its TLS session: no certificate signature or chain to check,
// a fraction of a full handshake. The client's certificate comes from the
// ticket and is checked against the CRL on every resumption
// (tlsState.checkCRL); an expired one is not resumed.
//
// With persistence, the keys that encrypt tickets are kept in
// PERSISTENCE_FILE.tickets (mode 0600, owned by serve; a file serve did
// not write is ignored, see loadTicketKeys) so that tickets survive a restart:
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

// openOwn opens path for reading without following a symbolic link or
// blocking on a FIFO, and checks it with persist.OwnFile (the same rule as
// the persistence database's: a file planted there by another account
// must never be taken for serve's own).
func openOwn(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, errors.New("a symbolic link")
		}
		return nil, err
	}
	if err := persist.OwnFile(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// loadTicketKeys reads the key file. It always returns usable keys: none
// when the file is missing, and none, with ignored saying why, when the
// file is not serve's own (persist.OwnFile), cannot be read or is damaged. Keys
// serve did not write would let whoever wrote them forge a ticket carrying
// any client's certificate, so such a file is never used; rotate then
// replaces it with new keys.
func loadTicketKeys(path string) (tk *ticketKeys, ignored error) {
	tk = &ticketKeys{path: path}
	f, err := openOwn(path)
	if errors.Is(err, fs.ErrNotExist) {
		return tk, nil
	}
	if err != nil {
		return tk, fmt.Errorf("TLS ticket keys %s ignored: %v; new keys replace it (resumed clients make one full handshake)", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return tk, fmt.Errorf("TLS ticket keys %s ignored: %v; new keys replace it", path, err)
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
			tk.keys = nil
			return tk, fmt.Errorf("%s:%d: not a ticket key line (UNIX-TIME 64-HEX-DIGITS): the file is damaged and ignored; new keys replace it (resumed clients make one full handshake)", path, line)
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
