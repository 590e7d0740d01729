package s3_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/testenv"
)

func TestDebugPages(t *testing.T) {
	isolateAWS(t, true)
	srv := testenv.StartS3T(t)
	ctx := t.Context()
	srv.CreateBucket(ctx, "big")
	for i := range 1003 {
		srv.PutObject(ctx, "big", fmt.Sprintf("t%04d/part-0", i), []byte("abcd"))
		srv.PutObject(ctx, "big", fmt.Sprintf("t%04d/part-1", i), []byte("abcd"))
	}
	st := open(t, s3Config(srv, "s3://big/"))
	cat, err := st.ReadCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second)
	seen := map[string]int{}
	for _, p := range cat.Prefixes {
		seen[p.Prefix]++
		if seen[p.Prefix] > 1 {
			t.Logf("dup %+v", p)
		}
	}
}
