package broker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// journal is an append-only log of publishes acknowledged but not yet
// stored: a record per put (one write(2) each, before the PUBACK, so a
// killed process loses nothing the kernel has) and deletes in batches.
// Once it has grown past journalCompactSize it is rewritten with only the
// pending entries (a new file renamed over the old: a crash leaves one or
// the other), so it stays small under a load that never pauses.
type journal struct {
	mu        sync.Mutex
	path      string
	f         *os.File
	size      int64
	live      map[string][]byte // pending entries
	buf       []byte
	recovered map[string][]byte // entries pending at open, for replay
}

const journalCompactSize = 4 << 20

const (
	opPut = 1
	opDel = 2
)

func openJournal(path string) (*journal, error) {
	f, err := openOwnState(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	j := &journal{path: path, f: f, recovered: map[string][]byte{}, live: map[string][]byte{}}
	r := bufio.NewReader(f)
	for {
		op, key, val, err := readRecord(r)
		if err != nil {
			break // EOF, or a record cut short by a crash: ignore it
		}
		switch op {
		case opPut:
			j.recovered[key] = val
		case opDel:
			delete(j.recovered, key)
		}
	}
	// Until they are republished (reset), the recovered entries are
	// pending too: a compaction must keep them.
	for k, v := range j.recovered {
		j.live[k] = v
	}
	return j, nil
}

func readRecord(r *bufio.Reader) (op byte, key string, val []byte, err error) {
	var hdr [7]byte
	if _, err = io.ReadFull(r, hdr[:]); err != nil {
		return
	}
	op = hdr[0]
	kl := int(binary.BigEndian.Uint16(hdr[1:3]))
	vl := int(binary.BigEndian.Uint32(hdr[3:7]))
	if vl > 512<<20 {
		return 0, "", nil, errors.New("journal record too large")
	}
	b := make([]byte, kl+vl)
	if _, err = io.ReadFull(r, b); err != nil {
		return
	}
	return op, string(b[:kl]), b[kl:], nil
}

func appendRecord(buf []byte, op byte, key string, val []byte) []byte {
	buf = append(buf, op)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(key)))
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(val)))
	buf = append(buf, key...)
	return append(buf, val...)
}

func (j *journal) put(key string, val []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.live[key] = val
	j.buf = appendRecord(j.buf[:0], opPut, key, val)
	n, err := j.f.Write(j.buf)
	j.size += int64(n)
	return err
}

func (j *journal) del(key string) error { return j.delMany([]string{key}) }

// delMany clears several entries with one write.
func (j *journal) delMany(keys []string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.buf = j.buf[:0]
	for _, k := range keys {
		delete(j.live, k)
		j.buf = appendRecord(j.buf, opDel, k, nil)
	}
	n, err := j.f.Write(j.buf)
	j.size += int64(n)
	if err != nil {
		return err
	}
	if j.size > journalCompactSize {
		return j.compact()
	}
	return nil
}

// compact rewrites the journal with the pending entries only.
func (j *journal) compact() error {
	if len(j.live) == 0 {
		return j.truncate()
	}
	var buf []byte
	for k, v := range j.live {
		buf = appendRecord(buf, opPut, k, v)
	}
	// A new file of serve's own: the directory may be writable by another
	// account, and whatever it left at tmp (a symbolic link to a file of
	// root's, say) is removed, never written through.
	tmp := j.path + ".new"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("compact journal: %w", err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("compact journal: %w", err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("compact journal: %w", err)
	}
	j.f.Close()
	j.f, j.size = f, int64(len(buf))
	return nil
}

// sync flushes the journal to disk.
func (j *journal) sync() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Sync()
}

// close closes the journal's file.
func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Close()
}

// reset empties the journal after the recovered entries were republished.
func (j *journal) reset() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for k := range j.recovered {
		delete(j.live, k)
	}
	return j.truncate()
}

func (j *journal) truncate() error {
	if err := j.f.Truncate(0); err != nil {
		return err
	}
	_, err := j.f.Seek(0, io.SeekStart)
	j.size = 0
	return err
}

// walEntry is a journalled publish.
type walEntry struct {
	Topic   string `json:"t"`
	Payload []byte `json:"p"`
	Qos     byte   `json:"q"`
	Retain  bool   `json:"r"`
}
