# Passwords for the runs in which an endpoint is not planned (an apply that
# changes only the task, every destroy): keyed user@host:port/database.
provider "migration" {
  postgres_passwords = {
    "migrator@db.internal:5432/shop"   = var.legacy_password
    "loader@aurora.internal:5432/shop" = var.aurora_password
  }
}

resource "migration_task" "shop" {
  name               = "shop" # checkpoints, replication slot and publication are keyed by it
  source_endpoint_id = migration_endpoint.legacy.id
  target_endpoint_id = migration_endpoint.aurora.id
  # Load from a replication slot's snapshot, then replay the source's changes
  # on every apply (the plan shows an update whenever changes are pending).
  mode = "full_load_and_cdc"

  tables = [
    # Every table of the schema, same names on the target...
    { source = "shop.*" },
    # ...except orders: recent rows only, into another name, without the
    # free-text note, with the amount renamed and emails hashed (joins still match).
    {
      source = "shop.orders"
      target = "orders"
      where  = "created_at >= '2024-01-01'"
      columns = {
        exclude   = ["note"]
        rename    = { amount = "total" }
        transform = { email = "sha256" }
      }
    },
  ]

  parallelism = 4
  wait_for    = "cdc_synced" # the first apply also replays the changes made during the load
  on_destroy  = "keep_target"
  cdc         = { enabled = true, warn_retained_wal_mb = 2048 }
  timeouts    = { create = "2h", update = "30m" }
}

output "shop_migration" {
  value = {
    phase         = migration_task.shop.phase
    rows_copied   = migration_task.shop.rows_copied
    confirmed_lsn = migration_task.shop.confirmed_lsn
    lag_seconds   = migration_task.shop.lag_seconds
  }
}
