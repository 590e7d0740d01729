package cdc

import "github.com/migrationworks/terraform-provider-migration/internal/engine/cdc/pgoutput"

// arena hands out the memory of the changes being read in chunks: the
// message payloads their values point into, the values, and the changes of
// each transaction. A catch-up decodes hundreds of thousands of small
// messages; allocating each one's pieces separately cost more CPU than the
// decoding. A chunk lives while any batch holding part of it does, so
// memory still follows the batch size.
type arena struct {
	data []byte
	vals []Value
	chg  []Change
	// first is where the open transaction's changes start in chg.
	first int
}

const (
	arenaData    = 256 << 10
	arenaValues  = 8 << 10
	arenaChanges = 2 << 10
)

// bytes copies b into the arena: pgconn reuses its receive buffer.
func (a *arena) bytes(b []byte) []byte {
	if len(b) > arenaData/4 {
		return append([]byte(nil), b...)
	}
	if len(a.data)+len(b) > cap(a.data) {
		a.data = make([]byte, 0, arenaData)
	}
	n := len(a.data)
	a.data = append(a.data, b...)
	return a.data[n : n+len(b) : n+len(b)]
}

// values returns n zeroed values.
func (a *arena) values(n int) pgoutput.Tuple {
	if n > arenaValues/4 {
		return make([]Value, n)
	}
	if len(a.vals)+n > cap(a.vals) {
		a.vals = make([]Value, 0, arenaValues)
	}
	i := len(a.vals)
	a.vals = a.vals[:i+n]
	return a.vals[i : i+n : i+n]
}

// begin opens a transaction's list of changes.
func (a *arena) begin() { a.first = len(a.chg) }

// change appends c to the open transaction.
func (a *arena) change(c Change) {
	if len(a.chg) == cap(a.chg) {
		// A new chunk takes the open transaction's changes along.
		open := a.chg[a.first:]
		grown := make([]Change, len(open), max(arenaChanges, 2*len(open)))
		copy(grown, open)
		a.chg, a.first = grown, 0
	}
	a.chg = append(a.chg, c)
}

// commit closes the open transaction and returns its changes.
func (a *arena) commit() []Change {
	if a.first == len(a.chg) {
		return nil
	}
	c := a.chg[a.first:len(a.chg):len(a.chg)]
	a.first = len(a.chg)
	return c
}
