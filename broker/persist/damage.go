package persist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"
)

// ErrDamaged: the database is truncated or its pages are damaged. The
// broker refuses it (it does not guess what is missing) with what to do.
var ErrDamaged = errors.New("persistence database damaged")

// bbolt's meta page (page 0 and 1): the page header (16 bytes), then
// magic, version, page size, flags, the root bucket (16), the freelist,
// the high-water page id, the transaction id and a checksum of the rest.
const (
	metaOffset   = 16
	metaLen      = 64
	boltMagic    = 0xED0CDAED
	boltVersion  = 2
	minFileBytes = 4 * 4096
)

type metaPage struct {
	ok       bool
	pageSize uint32
	pgid     uint64
	txid     uint64
}

// readMeta decodes and checks one meta page at off.
func readMeta(f *os.File, off int64) metaPage {
	var b [metaOffset + metaLen]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return metaPage{}
	}
	m := b[metaOffset:]
	h := fnv.New64a()
	h.Write(m[:56])
	if binary.LittleEndian.Uint32(m[0:]) != boltMagic || binary.LittleEndian.Uint32(m[4:]) != boltVersion ||
		binary.LittleEndian.Uint64(m[56:]) != h.Sum64() {
		return metaPage{}
	}
	return metaPage{ok: true, pageSize: binary.LittleEndian.Uint32(m[8:]), pgid: binary.LittleEndian.Uint64(m[40:]), txid: binary.LittleEndian.Uint64(m[48:])}
}

// checkFile looks at an existing database before bbolt maps it: a file
// shorter than its header says (bbolt would fault on the missing pages)
// is refused; a damaged newest header, with which bbolt silently opens
// the transaction before it (the last changes lost), is logged loudly.
// An empty file is a new database, said so.
func checkFile(path string, log *slog.Logger) error {
	f, err := os.Open(path)
	if err != nil {
		return nil // missing: bbolt creates it; others: Open says
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	if st.Size() == 0 {
		log.Warn("the persistence database is an empty file: starting with an empty store", "file", path)
		return nil
	}
	m0 := readMeta(f, 0)
	pageSize := int64(m0.pageSize)
	if !m0.ok {
		pageSize = 4096
	}
	m1 := readMeta(f, pageSize)
	if !m0.ok && !m1.ok {
		return nil // bbolt refuses it as invalid, with its own words
	}
	use, other := m0, m1
	if !m0.ok || m1.ok && m1.txid > m0.txid {
		use, other = m1, m0
	}
	if !other.ok {
		log.Error("the persistence database's other header is damaged; it opens at its last good transaction, and the changes of the damaged one's (if newer) are lost",
			"file", path, "transaction", use.txid)
	}
	if need := int64(use.pgid) * int64(use.pageSize); st.Size() < need || st.Size() < minFileBytes {
		return fmt.Errorf("%w: %s is %d bytes, its header says %d (truncated); restore it from a backup, or move it away (the broker then starts with an empty store)",
			ErrDamaged, path, st.Size(), need)
	}
	return nil
}

// guard runs fn, turning a fault on the mapped file or a panic of bbolt on
// a damaged page into ErrDamaged.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v; restore it from a backup, or move it away (the broker then starts with an empty store)", ErrDamaged, path, r)
		}
	}()
	return fn()
}

// walk reads every page of an existing database, read-only, in this
// goroutine (guarded): bbolt rebuilds its free list at a writable open by
// walking the pages in a goroutine of its own, where a damaged page would
// crash the broker instead of being refused.
func walk(path string) error {
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		return nil
	}
	return guard(path, func() error {
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second, OpenFile: OpenOwn})
		if err != nil {
			return nil // the writable open reports it, with the right words
		}
		defer db.Close()
		return db.View(func(tx *bbolt.Tx) error {
			var visit func(b *bbolt.Bucket) error
			visit = func(b *bbolt.Bucket) error {
				return b.ForEach(func(k, v []byte) error {
					if v == nil {
						if nb := b.Bucket(k); nb != nil {
							return visit(nb)
						}
					}
					return nil
				})
			}
			return tx.ForEach(func(_ []byte, b *bbolt.Bucket) error { return visit(b) })
		})
	})
}
