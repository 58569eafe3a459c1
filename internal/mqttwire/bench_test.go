package mqttwire

import (
	"bufio"
	"testing"
)

// loop is an endless stream of one encoded packet.
type loop struct {
	b []byte
	i int
}

func (l *loop) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.b[l.i:])
		n += c
		l.i = (l.i + c) % len(l.b)
	}
	return n, nil
}

func benchRead(b *testing.B, p Packet) {
	enc := p.Append(nil)
	d := NewReader(bufio.NewReaderSize(&loop{b: enc}, 4096), 0)
	d.Version = p.Version
	var q Packet
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Read(&q); err != nil {
			b.Fatal(err)
		}
		if p.Type == CONNECT {
			d.Version = 0
		}
	}
}

func BenchmarkReadPublishV4(b *testing.B) {
	benchRead(b, Packet{Type: PUBLISH, Version: 4, QoS: 1, ID: 7, Topic: bs("sensors/building-1/floor-2/temp"), Payload: make([]byte, 100)})
}

func BenchmarkReadPublishV5Props(b *testing.B) {
	benchRead(b, samplePackets()[9])
}

func BenchmarkReadConnectV5(b *testing.B) { benchRead(b, samplePackets()[3]) }

func BenchmarkReadSubscribeV5(b *testing.B) { benchRead(b, samplePackets()[20]) }

func BenchmarkAppendPublishV5(b *testing.B) {
	p := samplePackets()[9]
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = p.Append(buf[:0])
	}
}
