package broker

import "errors"

// openPersist opens the persistence store (broker/persist).
func openPersist(b *Broker) (stateStore, error) {
	return nil, errors.New("persistence: not yet wired to broker/persist")
}
