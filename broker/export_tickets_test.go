package broker

import "github.com/mqttctl/mqttctl/broker/persist"

// SetEUIDForTest makes serve take uid as its effective uid when it checks
// who owns its files; it returns a function that undoes it.
func SetEUIDForTest(uid int) (restore func()) { return persist.SetEUIDForTest(uid) }
