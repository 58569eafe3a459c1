package confgen

import (
	"fmt"
	"os"
	"strings"
)

// PrepareBroker readies the machine for the real mosquitto to run c (the
// test helpers that start mosquitto call it). It refuses a config with
// errors (its diagnostics in the error). Run as root, where mosquitto drops
// to group's user before reading its files, it makes the persistence
// directory (0770) and gives group read access to exactly the files c
// names and that directory, below root (GrantGroupAccess); otherwise it
// changes nothing.
func (c *Config) PrepareBroker(group, root string) error {
	r, ds := c.Resolve()
	if HasErrors(ds) {
		return fmt.Errorf("the config has errors: %v", ds)
	}
	if os.Geteuid() != 0 {
		return nil
	}
	files := r.Files()
	if r.Persistence && r.PersistenceLocation != "" {
		if err := os.MkdirAll(r.PersistenceLocation, 0o770); err != nil {
			return err
		}
		if err := os.Chmod(r.PersistenceLocation, 0o770); err != nil {
			return err
		}
		files = append(files, strings.TrimSuffix(r.PersistenceLocation, "/"))
	}
	_, err := GrantGroupAccess(files, group, root)
	return err
}
