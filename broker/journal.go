package broker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// journal is an append-only log of publishes acknowledged but not yet
// queued: a record per put and per delete, one write(2) each, so a killed
// process loses nothing the kernel has. It is emptied when nothing is
// pending and it has grown past journalCompactSize.
type journal struct {
	mu        sync.Mutex
	f         *os.File
	size      int64
	pending   int
	buf       []byte
	recovered map[string][]byte // entries pending at open, for replay
}

const journalCompactSize = 4 << 20

const (
	opPut = 1
	opDel = 2
)

func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	j := &journal{f: f, recovered: map[string][]byte{}}
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

func (j *journal) write(op byte, key string, val []byte) error {
	j.buf = append(j.buf[:0], op)
	j.buf = binary.BigEndian.AppendUint16(j.buf, uint16(len(key)))
	j.buf = binary.BigEndian.AppendUint32(j.buf, uint32(len(val)))
	j.buf = append(j.buf, key...)
	j.buf = append(j.buf, val...)
	n, err := j.f.Write(j.buf)
	j.size += int64(n)
	return err
}

func (j *journal) put(key string, val []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.pending++
	return j.write(opPut, key, val)
}

func (j *journal) del(key string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.write(opDel, key, nil); err != nil {
		return err
	}
	if j.pending > 0 {
		j.pending--
	}
	if j.pending == 0 && j.size > journalCompactSize {
		return j.truncate()
	}
	return nil
}

// reset empties the journal after the recovered entries were republished.
func (j *journal) reset() error {
	j.mu.Lock()
	defer j.mu.Unlock()
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
