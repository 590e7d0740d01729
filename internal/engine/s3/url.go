package s3

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"strings"
)

// acceptedForms ends every url error, so the message alone tells the user
// what to write instead.
const acceptedForms = "use s3://bucket[/prefix/] or file:///absolute/dir/"

// Location is a parsed endpoint url.
type Location struct {
	Scheme string // "s3" | "file"
	Bucket string
	Prefix string // "" or ending in "/"
	Dir    string // file: absolute path
}

// String is the canonical url: s3://bucket/prefix/ or file:///dir/.
func (l Location) String() string {
	if l.Scheme == "file" {
		p := filepath.ToSlash(l.Dir)
		if !strings.HasSuffix(p, "/") {
			p += "/"
		}
		return (&url.URL{Scheme: "file", Path: p}).String()
	}
	return (&url.URL{Scheme: "s3", Host: l.Bucket, Path: "/" + l.Prefix}).String()
}

// ParseURL validates an endpoint url and splits it. It runs at plan time, so
// every error is one sentence naming the problem and the accepted forms.
func ParseURL(raw string) (Location, error) {
	bad := func(format string, args ...any) (Location, error) {
		return Location{}, fmt.Errorf("invalid url %q: %s; %s", raw, fmt.Sprintf(format, args...), acceptedForms)
	}
	if strings.TrimSpace(raw) == "" {
		return bad("the url is empty")
	}
	if strings.TrimSpace(raw) != raw {
		return bad("it has leading or trailing spaces")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("it cannot be parsed (%v)", unwrapURLError(err))
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(raw, "?#") {
		return bad("query strings and fragments are not allowed")
	}
	switch u.Scheme {
	case "s3":
		return parseS3(u, bad)
	case "file":
		return parseFile(raw, u, bad)
	case "":
		return bad("it has no scheme")
	default:
		return bad("scheme %q is not supported", u.Scheme)
	}
}

func parseS3(u *url.URL, bad func(string, ...any) (Location, error)) (Location, error) {
	if u.Opaque != "" {
		return bad("an s3 url starts with s3:// followed by the bucket name")
	}
	if u.User != nil {
		return bad("credentials do not belong in the url")
	}
	if u.Host == "" {
		return bad("the bucket name is empty")
	}
	if u.Port() != "" {
		return bad("a port does not belong in an s3 url (set endpoint_url for a custom server)")
	}
	if msg := checkBucket(u.Host); msg != "" {
		return bad("bucket name %q %s", u.Host, msg)
	}
	prefix := strings.TrimPrefix(u.Path, "/")
	if prefix != "" {
		if strings.HasPrefix(prefix, "/") || strings.Contains(prefix, "//") {
			return bad("the prefix %q has an empty path segment", prefix)
		}
		for _, seg := range strings.Split(strings.TrimSuffix(prefix, "/"), "/") {
			if seg == "." || seg == ".." {
				return bad("the prefix %q has a %q segment", prefix, seg)
			}
		}
		if !strings.HasSuffix(prefix, "/") {
			// A prefix names a folder of tables: "shop" must not also
			// match "shopping/".
			prefix += "/"
		}
	}
	return Location{Scheme: "s3", Bucket: u.Host, Prefix: prefix}, nil
}

// checkBucket applies S3's general-purpose bucket naming rules; it returns
// what is wrong, or "" when the name is valid.
func checkBucket(name string) string {
	if len(name) < 3 || len(name) > 63 {
		return "must be 3 to 63 characters long"
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '.' && r != '-' {
			return "may contain only lowercase letters, digits, dots and hyphens"
		}
	}
	if !isAlnum(name[0]) || !isAlnum(name[len(name)-1]) {
		return "must begin and end with a letter or digit"
	}
	if strings.Contains(name, "..") {
		return "must not contain two adjacent dots"
	}
	if net.ParseIP(name) != nil {
		return "must not be formatted as an IP address"
	}
	return ""
}

func isAlnum(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' }

func parseFile(raw string, u *url.URL, bad func(string, ...any) (Location, error)) (Location, error) {
	if u.Host != "" || u.User != nil {
		return bad("a file url names no host (file://%s/...): write file:/// and an absolute path", u.Host)
	}
	// file:/x and file:x parse without "//"; insist on the one spelling.
	if !strings.HasPrefix(strings.ToLower(raw), "file:///") || u.Opaque != "" {
		return bad("the path must be absolute")
	}
	p := u.Path
	if strings.Contains(p, "\x00") {
		return bad("the path contains a NUL byte")
	}
	for _, seg := range strings.Split(strings.Trim(p, "/"), "/") {
		if seg == "." || seg == ".." {
			return bad("the path %q has a %q segment", p, seg)
		}
	}
	dir := filepath.FromSlash(path.Clean(p))
	if !filepath.IsAbs(dir) {
		return bad("the path must be absolute")
	}
	return Location{Scheme: "file", Dir: dir}, nil
}

// unwrapURLError drops net/url's own quoting of the input, which the
// caller's message already shows.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
