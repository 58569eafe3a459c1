//go:build !linux

package fsx

import (
	"fmt"
	"os"
)

// syncAll makes the given files and directories durable, one by one
// (syncfs(2) is Linux's).
func syncAll(files, dirs []string) error {
	for _, p := range files {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("sync %s: %w", p, err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", p, err)
		}
	}
	for _, d := range dirs {
		syncDir(d)
	}
	return nil
}
