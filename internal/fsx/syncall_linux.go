package fsx

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// syncAll makes the given files and directories durable: one syncfs(2) for
// each file system the directories are on (it writes every dirty file and
// directory entry of that file system), instead of a sync per file. The
// files lie in the directories.
func syncAll(_ []string, dirs []string) error {
	done := map[uint64]bool{}
	for _, d := range dirs {
		f, err := os.Open(d)
		if err != nil {
			return fmt.Errorf("sync %s: %w", d, err)
		}
		st, err := f.Stat()
		if err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && done[uint64(sys.Dev)] {
				f.Close()
				continue
			} else if ok {
				done[uint64(sys.Dev)] = true
			}
			err = unix.Syncfs(int(f.Fd()))
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("sync the file system of %s: %w", d, err)
		}
	}
	return nil
}
