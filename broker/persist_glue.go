package broker

import (
	"errors"
	"fmt"

	"github.com/mqttctl/mqttctl/broker/persist"
	"github.com/mqttctl/mqttctl/internal/errs"
)

// openPersist opens the persistence database (broker/persist).
func openPersist(b *Broker) (stateStore, error) {
	st, err := persist.Open(b.storePath, b.log)
	switch {
	case err == nil:
		return st, nil
	case errors.Is(err, persist.ErrInUse):
		return nil, errs.Wrap(err, fmt.Sprintf("open %s: another broker holds it locked (two brokers cannot share one persistence_location; give each its own directory)", b.storePath), ErrPersistenceInUse)
	case errors.Is(err, persist.ErrForeignState):
		return nil, err // it names the file and the fix
	}
	return nil, fmt.Errorf("open %s: %w", b.storePath, err)
}
