package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Facts are what a migration needs to know about a server before it relies
// on logical replication.
type Facts struct {
	// ServerVersion is SHOW server_version without a distribution suffix, e.g. "15.18".
	ServerVersion    string
	ServerVersionNum int
	WalLevel         string
	IsSuperuser      bool
	// HasReplication is true for a superuser, a role with REPLICATION, and
	// on RDS/Aurora a member of rds_replication.
	HasReplication       bool
	MaxReplicationSlots  int
	FreeReplicationSlots int // max_replication_slots minus the slots that exist
	MaxWalSenders        int
	// LogicalReady: wal_level is logical, the role may replicate, and a slot
	// and a WAL sender are available.
	LogicalReady bool
	// Problems says, one sentence each, what to change for logical
	// replication to work; empty when LogicalReady.
	Problems []string
	// role is the current user, named in Problems.
	role string
}

// probeSQL reads everything in one round trip. pg_replication_slots is
// readable by every role; rds_replication only exists on RDS/Aurora, where
// it stands in for the REPLICATION attribute.
const probeSQL = `
SELECT current_setting('server_version'),
       current_setting('server_version_num')::int,
       current_setting('wal_level'),
       r.rolsuper,
       r.rolreplication OR EXISTS (
           SELECT 1 FROM pg_catalog.pg_roles g
           WHERE g.rolname = 'rds_replication' AND pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER')),
       current_setting('max_replication_slots')::int,
       (SELECT count(*) FROM pg_catalog.pg_replication_slots)::int,
       current_setting('max_wal_senders')::int,
       r.rolname
FROM pg_catalog.pg_roles r
WHERE r.rolname = current_user`

// Probe reports the server's version and whether it is ready for logical
// replication as the connected role, with what to change when it is not.
func Probe(ctx context.Context, pool *pgxpool.Pool) (Facts, error) {
	var f Facts
	var usedSlots int
	err := pool.QueryRow(ctx, probeSQL).Scan(
		&f.ServerVersion, &f.ServerVersionNum, &f.WalLevel, &f.IsSuperuser, &f.HasReplication,
		&f.MaxReplicationSlots, &usedSlots, &f.MaxWalSenders, &f.role,
	)
	if err != nil {
		return Facts{}, fmt.Errorf("probing server settings: %w", err)
	}
	f.ServerVersion = trimVersion(f.ServerVersion)
	f.HasReplication = f.HasReplication || f.IsSuperuser
	f.FreeReplicationSlots = max(f.MaxReplicationSlots-usedSlots, 0)
	f.evaluate()
	return f, nil
}

// evaluate fills Problems and LogicalReady from the other fields.
func (f *Facts) evaluate() {
	f.Problems = nil
	if f.WalLevel != "logical" {
		f.Problems = append(f.Problems, fmt.Sprintf(
			"set wal_level = logical in postgresql.conf (or rds.logical_replication = 1 on RDS/Aurora) and restart the server; it is %q now", f.WalLevel))
	}
	if !f.HasReplication {
		role := f.role
		if role == "" {
			role = "the migration role"
		}
		f.Problems = append(f.Problems, fmt.Sprintf(
			"give role %s the REPLICATION attribute (ALTER ROLE %s WITH REPLICATION; on RDS/Aurora GRANT rds_replication TO %s)",
			role, pgx.Identifier{role}.Sanitize(), pgx.Identifier{role}.Sanitize()))
	}
	if f.FreeReplicationSlots <= 0 {
		f.Problems = append(f.Problems, fmt.Sprintf(
			"raise max_replication_slots (now %d, none free) in postgresql.conf and restart the server, or drop an unused replication slot", f.MaxReplicationSlots))
	}
	if f.MaxWalSenders <= 0 {
		f.Problems = append(f.Problems,
			"set max_wal_senders to at least 1 (10 is usual) in postgresql.conf and restart the server")
	}
	f.LogicalReady = len(f.Problems) == 0
}

// trimVersion drops a distribution suffix: "15.18 (Debian 15.18-1.pgdg120+1)" -> "15.18".
func trimVersion(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t("); i >= 0 {
		v = v[:i]
	}
	return v
}
