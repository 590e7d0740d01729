package postgres

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestProbeSuperuser(t *testing.T) {
	pool := connect(t, superConfig("postgres"))
	f, err := Probe(t.Context(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\d+\.\d+$`).MatchString(f.ServerVersion) {
		t.Errorf("ServerVersion = %q, want major.minor with no suffix", f.ServerVersion)
	}
	major, _ := strconv.Atoi(strings.Split(f.ServerVersion, ".")[0])
	if f.ServerVersionNum/10000 != major || major < 10 {
		t.Errorf("ServerVersionNum = %d does not match ServerVersion %q", f.ServerVersionNum, f.ServerVersion)
	}
	// testenv configures wal_level = logical, 20 slots and 20 WAL senders.
	if f.WalLevel != "logical" || !f.IsSuperuser || !f.HasReplication || f.MaxReplicationSlots != 20 || f.MaxWalSenders != 20 {
		t.Errorf("facts = %+v", f)
	}
	if !f.LogicalReady || len(f.Problems) != 0 {
		t.Errorf("LogicalReady = %v, Problems = %q; want ready with no problems", f.LogicalReady, f.Problems)
	}
}

func TestProbeRoleWithoutReplication(t *testing.T) {
	const role, password = "probe_plain", "probe-plain-pw-1"
	if err := pg.CreateRole(t.Context(), role, password); err != nil {
		t.Fatal(err)
	}
	pool := connect(t, Config{Host: pg.Host, Port: pg.Port, Database: "postgres", Username: role, Password: password, SSLMode: "disable"})
	f, err := Probe(t.Context(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if f.IsSuperuser || f.HasReplication || f.LogicalReady {
		t.Errorf("IsSuperuser=%v HasReplication=%v LogicalReady=%v, want all false", f.IsSuperuser, f.HasReplication, f.LogicalReady)
	}
	if f.WalLevel != "logical" || f.FreeReplicationSlots <= 0 {
		t.Errorf("WalLevel=%q FreeReplicationSlots=%d: only the role should be a problem", f.WalLevel, f.FreeReplicationSlots)
	}
	if len(f.Problems) != 1 || !strings.Contains(f.Problems[0], "REPLICATION") || !strings.Contains(f.Problems[0], role) {
		t.Errorf("Problems = %q, want one naming REPLICATION and %s", f.Problems, role)
	}
}

func TestProbeRoleWithReplication(t *testing.T) {
	const role, password = "probe_repl", "probe-repl-pw-1"
	if err := pg.CreateRole(t.Context(), role, password, "REPLICATION"); err != nil {
		t.Fatal(err)
	}
	pool := connect(t, Config{Host: pg.Host, Port: pg.Port, Database: "postgres", Username: role, Password: password, SSLMode: "disable"})
	f, err := Probe(t.Context(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if f.IsSuperuser || !f.HasReplication || !f.LogicalReady || len(f.Problems) != 0 {
		t.Errorf("IsSuperuser=%v HasReplication=%v LogicalReady=%v Problems=%q", f.IsSuperuser, f.HasReplication, f.LogicalReady, f.Problems)
	}
}

func TestProbeCountsSlots(t *testing.T) {
	db := newDatabase(t)
	pool := connect(t, superConfig(db))
	before, err := Probe(t.Context(), pool)
	if err != nil {
		t.Fatal(err)
	}
	const slot = "probe_counts_slots"
	exec(t, db, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot)
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		if err := pg.Exec(context.Background(), db, "SELECT pg_drop_replication_slot($1)", slot); err != nil {
			t.Error(err)
		}
	})
	after, err := Probe(t.Context(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if after.FreeReplicationSlots != before.FreeReplicationSlots-1 {
		t.Errorf("FreeReplicationSlots %d -> %d after creating a slot, want one fewer", before.FreeReplicationSlots, after.FreeReplicationSlots)
	}
	var used int
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM pg_replication_slots").Scan(&used); err != nil {
		t.Fatal(err)
	}
	if want := after.MaxReplicationSlots - used; after.FreeReplicationSlots != want {
		t.Errorf("FreeReplicationSlots = %d, want %d", after.FreeReplicationSlots, want)
	}
}
