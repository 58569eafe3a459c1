package reload

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParsePID: a pid file's text gives a process id above 1 that prints
// back as the text (white space aside), or an error; never 0, 1 or a
// negative number, which kill(2) reads as a process group or every process.
func FuzzParsePID(f *testing.F) {
	for _, s := range []string{"1234", "1234\n", " 42 \n", "0", "1", "-1", "-1234", "+5", "12ab", "", "99999999999999999999", "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pid, err := parsePID(data)
		if err != nil {
			return
		}
		if pid < 2 {
			t.Fatalf("%q gives pid %d", data, pid)
		}
		if strconv.Itoa(pid) != strings.TrimSpace(string(data)) {
			t.Fatalf("%q gives pid %d", data, pid)
		}
	})
}
