# Passwords for the runs in which an endpoint is not planned (an apply that
# changes only the task, every destroy): keyed user@host:port/database.
provider "migration" {
  postgres_passwords = {
    "migrator@db.internal:5432/shop"   = var.legacy_password
    "loader@aurora.internal:5432/shop" = var.aurora_password
  }
}

resource "migration_task" "shop" {
  name               = "shop" # checkpoints on the target are keyed by it
  source_endpoint_id = migration_endpoint.legacy.id
  target_endpoint_id = migration_endpoint.aurora.id
  mode               = "full_load"

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
  wait_for    = "full_load"
  on_destroy  = "keep_target"
  timeouts    = { create = "2h", update = "30m" }
}

output "shop_migration" {
  value = {
    phase       = migration_task.shop.phase
    rows_copied = migration_task.shop.rows_copied
  }
}
