package confgen

import (
	"os"
	"strconv"
	"syscall"
)

func inGroup(st os.FileInfo, gids []string) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	for _, g := range gids {
		if g == strconv.Itoa(int(sys.Gid)) {
			return true
		}
	}
	return false
}
