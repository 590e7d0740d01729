# Assess the source before migrating it: read at plan time, nothing written.
data "migration_catalog" "legacy" {
  endpoint_id = migration_endpoint.legacy.id
  schemas     = ["shop"] # optional; default: every non-system schema
}

output "tables" {
  value = {
    for t in data.migration_catalog.legacy.tables : t.qualified_name => {
      rows  = t.estimated_rows
      bytes = t.bytes
      key   = t.primary_key
    }
  }
}

# Tables that copy but need REPLICA IDENTITY FULL or a key before CDC.
output "needs_a_key_for_cdc" {
  value = data.migration_catalog.legacy.tables_without_primary_key
}

output "cdc_problems" {
  value = data.migration_catalog.legacy.logical_replication.problems
}
