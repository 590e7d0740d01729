package postgres

import (
	"strings"
	"testing"
)

func TestTrimVersion(t *testing.T) {
	for in, want := range map[string]string{
		"15.18 (Debian 15.18-1.pgdg120+1)": "15.18",
		"16.4":                             "16.4",
		"17beta1":                          "17beta1",
		" 14.2 (Ubuntu 14.2-1)":            "14.2",
	} {
		if got := trimVersion(in); got != want {
			t.Errorf("trimVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFactsEvaluate(t *testing.T) {
	ready := Facts{WalLevel: "logical", HasReplication: true, MaxReplicationSlots: 10, FreeReplicationSlots: 3, MaxWalSenders: 10, role: "m"}
	ready.evaluate()
	if !ready.LogicalReady || len(ready.Problems) != 0 {
		t.Fatalf("ready server: LogicalReady=%v Problems=%q", ready.LogicalReady, ready.Problems)
	}

	bad := Facts{WalLevel: "replica", MaxReplicationSlots: 2, FreeReplicationSlots: 0, role: "Migrator"}
	bad.evaluate()
	if bad.LogicalReady {
		t.Fatal("LogicalReady with nothing set up")
	}
	want := []string{"wal_level = logical", `ALTER ROLE "Migrator" WITH REPLICATION`, "max_replication_slots (now 2", "max_wal_senders"}
	if len(bad.Problems) != len(want) {
		t.Fatalf("Problems = %q, want %d entries", bad.Problems, len(want))
	}
	for i, w := range want {
		if !strings.Contains(bad.Problems[i], w) {
			t.Errorf("Problems[%d] = %q, want it to mention %q", i, bad.Problems[i], w)
		}
	}
}

func TestEstimateRows(t *testing.T) {
	for in, want := range map[float64]int64{-1: -1, 0: 0, 1234.4: 1234, 1e9: 1_000_000_000} {
		if got := estimateRows(in); got != want {
			t.Errorf("estimateRows(%v) = %d, want %d", in, got, want)
		}
	}
}
