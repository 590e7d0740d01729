// Package awsconf loads AWS configuration the way every AWS connector needs
// it — region, profile, role, endpoint, the standard credential chain — and
// classifies AWS errors into engine.ConnectError.
//
// The endpoint URL itself is set on each service's client, so that it wins
// over AWS_ENDPOINT_URL_<SERVICE> and STS stays on AWS; here it names what
// did not answer. A connector keeps its settings, its target's name and the
// error codes only its service answers with.
package awsconf
