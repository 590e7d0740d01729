package provider

import (
	"fmt"
	"sync"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/endpoint"
	"github.com/migrationworks/terraform-provider-migration/internal/engine/postgres"
)

// credentialStore keeps, for the life of one provider process, the
// PostgreSQL passwords this process has been given.
//
// Write-only values reach the provider only with the configuration of the
// endpoint itself (its plan, create and update), never from state, and
// Terraform starts a new provider process for every walk. So a resource that
// names an endpoint by id finds its password, in this order:
//  1. the endpoint's password_wo, when this walk planned or applied the
//     endpoint (Terraform plans an endpoint before what references it);
//  2. the provider's postgres_passwords, keyed user@host:port/database,
//     which every walk receives, destroy included;
//  3. libpq's own sources, PGPASSWORD, PGPASSFILE and ~/.pgpass, which pgx
//     reads when no password is set.
type credentialStore struct {
	mu    sync.RWMutex
	byID  map[string]string
	byKey map[string]string
}

func newCredentialStore() *credentialStore {
	return &credentialStore{byID: map[string]string{}, byKey: map[string]string{}}
}

func (s *credentialStore) put(id, password string) {
	if id == "" || password == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[id] = password
}

func (s *credentialStore) setByKey(byKey map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range byKey {
		if v != "" {
			s.byKey[k] = v
		}
	}
}

// password finds the password of a PostgreSQL endpoint; ok is false when
// neither this walk nor the provider configuration has it.
func (s *credentialStore) password(id string, c *postgres.Config) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if pw, ok := s.byID[id]; ok {
		return pw, true
	}
	pw, ok := s.byKey[c.PassKey()]
	return pw, ok
}

// resolveEndpoint turns an endpoint id into a spec with its password filled
// in when it is known; known reports whether it was.
func (d *providerData) resolveEndpoint(id string) (spec endpoint.Spec, known bool, err error) {
	spec, err = endpoint.ParseID(id)
	if err != nil {
		return spec, false, err
	}
	if spec.Postgres != nil && d != nil {
		spec.Postgres.Password, known = d.credentials.password(id, spec.Postgres)
	}
	return spec, known, nil
}

// passwordHint is the advice when a login failed without a known password.
func passwordHint(spec endpoint.Spec) string {
	return fmt.Sprintf("This Terraform run has no password for %s: its migration_endpoint was not planned in "+
		"this run (or is not referenced by id). Set the provider's postgres_passwords[%q] from an ephemeral "+
		"variable, or provide PGPASSWORD, PGPASSFILE or ~/.pgpass.", spec.Target(), spec.Postgres.PassKey())
}
