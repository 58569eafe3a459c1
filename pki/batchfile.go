package pki

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/mqttctl/mqttctl/internal/ident"
)

// Limits of a batch file (pki issue client --batch).
const (
	// MaxBatchDevices is the most devices one batch issues; a larger run
	// is split into several files (and several transactions).
	MaxBatchDevices = 10000
	// MaxBatchLine is the longest line, in bytes.
	MaxBatchLine = 1024
	// MaxBatchFile is the largest batch file, in bytes.
	MaxBatchFile = 4 << 20
	// maxOU is the X.509 upper bound of an organizational unit name.
	maxOU = 64
	// maxLineErrors is how many bad lines one refusal lists.
	maxLineErrors = 10
)

// BatchColumns are the columns of a batch file, in their default order.
var BatchColumns = []string{"name", "san", "ou"}

// BatchDevice is one device of a batch file.
type BatchDevice struct {
	Line  int      // line number in the file, from 1
	Name  string   // the MQTT identity: CN and file name
	Hosts []string // extra names (SANs): DNS names or IP addresses
	OU    string   // organisational unit; "" means ClientOU
}

// ErrBadBatch is wrapped by a BatchError.
var ErrBadBatch = errors.New("bad batch file")

// BatchError lists the bad lines of a batch file, each as FILE:LINE: reason.
type BatchError struct {
	File  string
	Lines []LineError
	More  bool // more bad lines than listed
}

// LineError is one bad line of a batch file (Line 0: the file as a whole).
type LineError struct {
	Line int
	Msg  string
}

func (e *BatchError) Error() string {
	var b strings.Builder
	for i, l := range e.Lines {
		if i > 0 {
			b.WriteString("\n")
		}
		if l.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: %s", e.File, l.Line, l.Msg)
		} else {
			fmt.Fprintf(&b, "%s: %s", e.File, l.Msg)
		}
	}
	if e.More {
		fmt.Fprintf(&b, "\n%s: more lines are bad; fix these and run again", e.File)
	}
	fmt.Fprintf(&b, "\nnothing was issued (a batch is all or nothing)")
	return b.String()
}

// Unwrap makes errors.Is(err, ErrBadBatch) hold.
func (e *BatchError) Unwrap() error { return ErrBadBatch }

// add records a bad line; it reports false once enough are listed.
func (e *BatchError) add(line int, format string, args ...any) bool {
	if len(e.Lines) >= maxLineErrors {
		e.More = true
		return false
	}
	e.Lines = append(e.Lines, LineError{line, fmt.Sprintf(format, args...)})
	return true
}

func (e *BatchError) orNil() error {
	if len(e.Lines) == 0 {
		return nil
	}
	return e
}

// ParseBatch reads a batch file: one device a line, comma-separated
// columns name, san (extra names, separated by spaces or ';') and ou, the
// last two optional. Blank lines and lines starting with '#' are skipped;
// a first line that starts with "name" or lists the columns is a header
// (it may reorder them). Every bad line is refused, with its number (up to
// maxLineErrors of them): an invalid or repeated name, a bad extra name,
// too many columns, a line over MaxBatchLine bytes, text that is not
// UTF-8, more than MaxBatchDevices devices. file names the file in the
// messages.
func ParseBatch(file string, data []byte) ([]BatchDevice, error) {
	bad := &BatchError{File: file}
	if len(data) > MaxBatchFile {
		bad.add(0, "the file is over %d MiB: split it into files of at most %d devices", MaxBatchFile>>20, MaxBatchDevices)
		return nil, bad
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a spreadsheet's byte order mark
	columns := BatchColumns
	var devices []BatchDevice
	seen := map[string]int{}
	folded := map[string]int{} // index in devices
	header := false
	for n, line := 1, []byte(nil); len(data) > 0; n++ {
		line, data, _ = bytes.Cut(data, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > MaxBatchLine {
			if !bad.add(n, "the line is %d bytes long, over %d: one device a line (name,san,ou)", len(line), MaxBatchLine) {
				break
			}
			continue
		}
		if !utf8.Valid(line) {
			if !bad.add(n, "the line is not UTF-8 text: save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)") {
				break
			}
			continue
		}
		text := strings.TrimSpace(string(line))
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Split(text, ",")
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
		if !header && len(devices) == 0 && len(bad.Lines) == 0 && isHeader(fields) {
			header = true
			cols, msg := parseBatchHeader(fields)
			if msg != "" {
				bad.add(n, "%s", msg)
				break
			}
			columns = cols
			continue
		}
		header = true // a header comes first or not at all
		dev, msg := parseBatchLine(fields, columns)
		if msg == "" {
			if prev, ok := seen[dev.Name]; ok {
				msg = fmt.Sprintf("%q is also on line %d: list each device once", dev.Name, prev)
			} else if prev, ok := folded[foldName(dev.Name)]; ok {
				msg = fmt.Sprintf("%q differs only in case from %q on line %d: their files would be one file on a case-insensitive file system (a FAT USB stick, macOS); rename one", dev.Name, devices[prev].Name, devices[prev].Line)
			}
		}
		if msg == "" && len(devices) == MaxBatchDevices {
			msg = fmt.Sprintf("more than %d devices: split the file into batches of at most %d lines", MaxBatchDevices, MaxBatchDevices)
		}
		if msg != "" {
			if !bad.add(n, "%s", msg) || len(devices) == MaxBatchDevices {
				break
			}
			continue
		}
		dev.Line = n
		seen[dev.Name] = n
		folded[foldName(dev.Name)] = len(devices)
		devices = append(devices, dev)
	}
	if len(bad.Lines) == 0 && len(devices) == 0 {
		bad.add(0, "no devices: put one device a line, e.g. sensor-0001 (or sensor-0001,sensor-0001.example.com,Plant 7)")
	}
	return devices, bad.orNil()
}

// foldName is name with case folded: two names with the same foldName
// name one file on a case-insensitive file system.
func foldName(name string) string { return strings.ToLower(strings.ToUpper(name)) }

// isHeader reports whether the first line is a header: it starts with the
// column "name", or names the columns only (name among them).
func isHeader(fields []string) bool {
	if strings.EqualFold(fields[0], "name") {
		return true
	}
	name := false
	for _, f := range fields {
		if !contains(BatchColumns, strings.ToLower(f)) {
			return false
		}
		name = name || strings.EqualFold(f, "name")
	}
	return name
}

// parseBatchHeader reads a header line: the columns name, san and ou, each
// at most once, name among them.
func parseBatchHeader(fields []string) ([]string, string) {
	var cols []string
	for _, f := range fields {
		c := strings.ToLower(f)
		switch {
		case !contains(BatchColumns, c):
			return nil, fmt.Sprintf("header column %q is not one of name, san, ou", f)
		case contains(cols, c):
			return nil, fmt.Sprintf("header column %q is there twice", f)
		}
		cols = append(cols, c)
	}
	return cols, ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// parseBatchLine reads one device's fields in the order of columns; the
// message says what is wrong ("" when nothing is).
func parseBatchLine(fields, columns []string) (BatchDevice, string) {
	var d BatchDevice
	if len(fields) > len(columns) {
		return d, fmt.Sprintf("%d columns, but the columns are %s: give several extra names in the san column separated by spaces (names with a comma cannot be issued in a batch; use pki issue client)",
			len(fields), strings.Join(columns, ","))
	}
	for i, f := range fields {
		if strings.ContainsRune(f, '"') {
			return d, "quotes are not read in a batch file: write the values without them"
		}
		switch columns[i] {
		case "name":
			d.Name = f
		case "san":
			d.Hosts = strings.FieldsFunc(f, func(r rune) bool { return r == ';' || r == ' ' || r == '\t' })
		case "ou":
			d.OU = f
		}
	}
	if err := ident.ValidateNew(d.Name); err != nil {
		return d, err.Error()
	}
	if isPrev(d.Name + ".crt") {
		return d, fmt.Sprintf("name %q: names ending in %q are kept for the certificates renew replaces; choose another name", d.Name, prevSuffix)
	}
	if len(d.Hosts) > 0 {
		if _, err := parseHosts(d.Hosts); err != nil {
			return d, "extra name: " + err.Error()
		}
	}
	if d.OU != "" {
		if err := ident.CheckText("OU", d.OU); err != nil {
			return d, err.Error()
		}
		if strings.EqualFold(d.OU, BootstrapOU) {
			return d, fmt.Sprintf("OU %q is the mark of a bootstrap certificate (serve refuses such a certificate as a client, mosquitto does not): choose another OU", d.OU)
		}
		if len(d.OU) > maxOU {
			return d, fmt.Sprintf("OU %q is longer than %d bytes (the X.509 limit)", d.OU, maxOU)
		}
	}
	return d, ""
}
