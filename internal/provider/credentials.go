package provider

import "sync"

// credentialStore keeps, for the life of one provider process, the
// passwords that endpoint configurations carried in their write-only
// password_wo attribute, keyed by endpoint id.
//
// Write-only values reach the provider only with the configuration of the
// endpoint itself (its plan, create and update), never from state. A data
// source or resource that names an endpoint by id reads the password here:
// Terraform plans an endpoint before anything that references its id, so
// within one walk the password is known by the time it is needed. Where it
// is not (an endpoint with no change is not re-planned during apply), the
// engine falls back to libpq's own sources: PGPASSWORD, PGPASSFILE and
// ~/.pgpass.
type credentialStore struct {
	mu   sync.RWMutex
	byID map[string]string
}

func newCredentialStore() *credentialStore {
	return &credentialStore{byID: map[string]string{}}
}

func (s *credentialStore) put(id, password string) {
	if id == "" || password == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[id] = password
}

func (s *credentialStore) get(id string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	pw, ok := s.byID[id]
	return pw, ok
}
