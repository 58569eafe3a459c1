//go:build unix

package enroll

import (
	"os"
	"syscall"
)

// ino is the file's inode number (a file replaced by a rename within the
// same second and of the same size still changes it).
func ino(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
