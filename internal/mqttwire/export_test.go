package mqttwire

// Refusal is refusal for the external tests (mosquitto_test.go).
type Refusal struct {
	Name    string
	Lax20   bool
	Version byte
	Pkt     []byte
	Code    ReasonCode
}

func Refusals() []Refusal {
	var out []Refusal
	for _, r := range refusals {
		out = append(out, Refusal{r.name, r.lax20, r.version, r.pkt, r.code})
	}
	return out
}

func SamplePackets() []Packet { return samplePackets() }

type Acceptance struct {
	Name    string
	Version byte
	Pkt     []byte
}

func Acceptances() []Acceptance {
	var out []Acceptance
	for _, a := range acceptances {
		out = append(out, Acceptance{a.name, a.version, a.pkt})
	}
	return out
}

// BufCap is the capacity of the Reader's body buffer.
func (d *Reader) BufCap() int { return cap(d.buf) }
