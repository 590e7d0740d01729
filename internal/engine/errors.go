package engine

import (
	"errors"
	"fmt"
)

// ConnectErrorKind classifies why an endpoint could not be reached, so the
// Terraform layer can tell the user what to do about it.
type ConnectErrorKind int

const (
	// ConnectOther is any failure not classified below.
	ConnectOther ConnectErrorKind = iota
	// ConnectUnreachable: nothing answered at host:port (refused, DNS, timeout).
	ConnectUnreachable
	// ConnectAuthFailed: the server rejected the credentials.
	ConnectAuthFailed
	// ConnectDatabaseMissing: the named database (or bucket, table) does not exist.
	ConnectDatabaseMissing
	// ConnectTLS: the TLS handshake or certificate verification failed.
	ConnectTLS
	// ConnectPermission: connected, but the user lacks a needed privilege.
	ConnectPermission
)

func (k ConnectErrorKind) String() string {
	switch k {
	case ConnectUnreachable:
		return "unreachable"
	case ConnectAuthFailed:
		return "authentication failed"
	case ConnectDatabaseMissing:
		return "does not exist"
	case ConnectTLS:
		return "TLS failure"
	case ConnectPermission:
		return "permission denied"
	default:
		return "connection failed"
	}
}

// ConnectError is returned by every connector's Connect/Probe when an
// endpoint cannot be used. Target names what was being reached (host:port,
// region, bucket) and never contains a secret; Hint says what to change.
type ConnectError struct {
	Kind   ConnectErrorKind
	Target string
	Hint   string
	Err    error
}

func (e *ConnectError) Error() string {
	msg := fmt.Sprintf("%s: %s", e.Target, e.Kind)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ConnectError) Unwrap() error { return e.Err }

// AsConnectError reports whether err carries a *ConnectError and returns it.
func AsConnectError(err error) (*ConnectError, bool) {
	var ce *ConnectError
	if errors.As(err, &ce) {
		return ce, true
	}
	return nil, false
}
