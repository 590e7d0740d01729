package s3_test

import (
	"strings"
	"testing"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/s3"
)

func TestParseURLAccepts(t *testing.T) {
	for _, tc := range []struct {
		raw       string
		want      s3.Location
		canonical string
	}{
		{"s3://archive/shop/", s3.Location{Scheme: "s3", Bucket: "archive", Prefix: "shop/"}, "s3://archive/shop/"},
		{"s3://archive/shop", s3.Location{Scheme: "s3", Bucket: "archive", Prefix: "shop/"}, "s3://archive/shop/"},
		{"s3://archive", s3.Location{Scheme: "s3", Bucket: "archive"}, "s3://archive/"},
		{"s3://archive/", s3.Location{Scheme: "s3", Bucket: "archive"}, "s3://archive/"},
		{"s3://my.data-2024/a/b/c/", s3.Location{Scheme: "s3", Bucket: "my.data-2024", Prefix: "a/b/c/"}, "s3://my.data-2024/a/b/c/"},
		{"S3://abc/x", s3.Location{Scheme: "s3", Bucket: "abc", Prefix: "x/"}, "s3://abc/x/"},
		{"s3://" + strings.Repeat("a", 63), s3.Location{Scheme: "s3", Bucket: strings.Repeat("a", 63)}, "s3://" + strings.Repeat("a", 63) + "/"},
		{"file:///var/lib/archive/", s3.Location{Scheme: "file", Dir: "/var/lib/archive"}, "file:///var/lib/archive/"},
		{"file:///var/lib/archive", s3.Location{Scheme: "file", Dir: "/var/lib/archive"}, "file:///var/lib/archive/"},
		{"file:///", s3.Location{Scheme: "file", Dir: "/"}, "file:///"},
		{"file:///tmp//x/", s3.Location{Scheme: "file", Dir: "/tmp/x"}, "file:///tmp/x/"},
		{"file:///data/with%20space/", s3.Location{Scheme: "file", Dir: "/data/with space"}, "file:///data/with%20space/"},
	} {
		got, err := s3.ParseURL(tc.raw)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.raw, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, want %+v", tc.raw, got, tc.want)
		}
		if s := got.String(); s != tc.canonical {
			t.Errorf("ParseURL(%q).String() = %q, want %q", tc.raw, s, tc.canonical)
		}
		// The canonical form parses to the same location.
		if again, err := s3.ParseURL(got.String()); err != nil || again != got {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", got.String(), again, err, got)
		}
	}
}

func TestParseURLRejects(t *testing.T) {
	const forms = "; use s3://bucket[/prefix/] or file:///absolute/dir/"
	for _, tc := range []struct{ raw, want string }{
		{"", `invalid url "": the url is empty` + forms},
		{" s3://archive/", `invalid url " s3://archive/": it has leading or trailing spaces` + forms},
		{"archive/shop", `invalid url "archive/shop": it has no scheme` + forms},
		{"/var/lib/archive", `invalid url "/var/lib/archive": it has no scheme` + forms},
		{"http://archive/shop/", `invalid url "http://archive/shop/": scheme "http" is not supported` + forms},
		{"gs://archive/", `invalid url "gs://archive/": scheme "gs" is not supported` + forms},
		{"s3://", `invalid url "s3://": the bucket name is empty` + forms},
		{"s3:///shop/", `invalid url "s3:///shop/": the bucket name is empty` + forms},
		{"s3:archive", `invalid url "s3:archive": an s3 url starts with s3:// followed by the bucket name` + forms},
		{"s3://ab/", `invalid url "s3://ab/": bucket name "ab" must be 3 to 63 characters long` + forms},
		{"s3://" + strings.Repeat("a", 64), `invalid url "s3://` + strings.Repeat("a", 64) + `": bucket name "` + strings.Repeat("a", 64) + `" must be 3 to 63 characters long` + forms},
		{"s3://Archive/", `invalid url "s3://Archive/": bucket name "Archive" may contain only lowercase letters, digits, dots and hyphens` + forms},
		{"s3://my_bucket/", `invalid url "s3://my_bucket/": bucket name "my_bucket" may contain only lowercase letters, digits, dots and hyphens` + forms},
		{"s3://-archive/", `invalid url "s3://-archive/": bucket name "-archive" must begin and end with a letter or digit` + forms},
		{"s3://archive./", `invalid url "s3://archive./": bucket name "archive." must begin and end with a letter or digit` + forms},
		{"s3://my..bucket/", `invalid url "s3://my..bucket/": bucket name "my..bucket" must not contain two adjacent dots` + forms},
		{"s3://192.168.1.10/", `invalid url "s3://192.168.1.10/": bucket name "192.168.1.10" must not be formatted as an IP address` + forms},
		{"s3://archive:9000/", `invalid url "s3://archive:9000/": a port does not belong in an s3 url (set endpoint_url for a custom server)` + forms},
		{"s3://key:secret@archive/", `invalid url "s3://key:secret@archive/": credentials do not belong in the url` + forms},
		{"s3://archive/shop?versionId=1", `invalid url "s3://archive/shop?versionId=1": query strings and fragments are not allowed` + forms},
		{"s3://archive/shop/?", `invalid url "s3://archive/shop/?": query strings and fragments are not allowed` + forms},
		{"s3://archive/shop#x", `invalid url "s3://archive/shop#x": query strings and fragments are not allowed` + forms},
		{"s3://archive//shop/", `invalid url "s3://archive//shop/": the prefix "/shop/" has an empty path segment` + forms},
		{"s3://archive/shop/../x/", `invalid url "s3://archive/shop/../x/": the prefix "shop/../x/" has a ".." segment` + forms},
		{"file://relative/dir", `invalid url "file://relative/dir": a file url names no host (file://relative/...): write file:/// and an absolute path` + forms},
		{"file://host/var/x", `invalid url "file://host/var/x": a file url names no host (file://host/...): write file:/// and an absolute path` + forms},
		{"file://localhost/var/x", `invalid url "file://localhost/var/x": a file url names no host (file://localhost/...): write file:/// and an absolute path` + forms},
		{"file:relative/dir", `invalid url "file:relative/dir": the path must be absolute` + forms},
		{"file:./dir", `invalid url "file:./dir": the path must be absolute` + forms},
		{"file:/var/x", `invalid url "file:/var/x": the path must be absolute` + forms},
		{"file://", `invalid url "file://": the path must be absolute` + forms},
		{"file:///var/x?y=1", `invalid url "file:///var/x?y=1": query strings and fragments are not allowed` + forms},
		{"file:///var/x#frag", `invalid url "file:///var/x#frag": query strings and fragments are not allowed` + forms},
		{"file:///var/../etc/", `invalid url "file:///var/../etc/": the path "/var/../etc/" has a ".." segment` + forms},
		{"s3://arch%zzive/", `invalid url "s3://arch%zzive/": it cannot be parsed (invalid URL escape "%zz")` + forms},
	} {
		got, err := s3.ParseURL(tc.raw)
		if err == nil {
			t.Errorf("ParseURL(%q) = %+v, want error %q", tc.raw, got, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("ParseURL(%q) error\n got: %s\nwant: %s", tc.raw, err, tc.want)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"s3://archive/shop/", "file:///var/x/", "s3://a..b/", "file://h/x", "s3://x/y?z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		loc, err := s3.ParseURL(raw)
		if err != nil {
			return
		}
		// Whatever is accepted has a canonical form that parses back to it.
		again, err := s3.ParseURL(loc.String())
		if err != nil || again != loc {
			t.Fatalf("ParseURL(%q) = %+v; its String %q parses to %+v, %v", raw, loc, loc.String(), again, err)
		}
		if loc.Prefix != "" && loc.Prefix[len(loc.Prefix)-1] != '/' {
			t.Fatalf("ParseURL(%q): prefix %q does not end in /", raw, loc.Prefix)
		}
	})
}
