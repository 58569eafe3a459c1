package confgen

import (
	"os"
	"strconv"

	"github.com/mqttctl/mqttctl/internal/fsx"
)

func inGroup(st os.FileInfo, gids []string) bool {
	_, gid, ok := fsx.Owner(st)
	if !ok {
		return false
	}
	for _, g := range gids {
		if g == strconv.Itoa(gid) {
			return true
		}
	}
	return false
}
