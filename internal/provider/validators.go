package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/migrationworks/terraform-provider-migration/internal/engine/s3"
)

// s3URLValidator checks an s3.url at plan time with the engine's own parser,
// so plan and apply accept exactly the same urls.
type s3URLValidator struct{}

var _ validator.String = s3URLValidator{}

func (s3URLValidator) Description(context.Context) string {
	return "must be s3://bucket/prefix/ or file:///absolute/dir/"
}

func (v s3URLValidator) MarkdownDescription(ctx context.Context) string {
	return "must be `s3://bucket/prefix/` or `file:///absolute/dir/`"
}

func (s3URLValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := s3.ParseURL(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Object Storage URL",
			fmt.Sprintf("Attribute %s: %s.", req.Path, err))
	}
}
