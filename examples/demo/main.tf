# The demo scenario: a legacy PostgreSQL database, the PostgreSQL database it
# moves to, and a local archive directory; the catalog assesses the source and
# the task copies it, then follows its changes (change data capture).
# `make demo` runs it against throwaway servers; point the variables at your
# own to try it for real.
terraform {
  required_version = ">= 1.11"
  required_providers {
    migration = {
      source = "migrationworks/migration"
    }
  }
}

variable "pg_port" {
  type = number
}

variable "source_password" {
  type      = string
  sensitive = true
  ephemeral = true
}

variable "target_password" {
  type      = string
  sensitive = true
  ephemeral = true
}

variable "archive_dir" {
  type = string
}

# The endpoints' write-only passwords reach the provider only in runs that
# plan the endpoints; these cover the rest (an apply that changes only the
# task, a destroy). Provider configuration is never stored.
provider "migration" {
  postgres_passwords = {
    "migrator@127.0.0.1:${var.pg_port}/shop"    = var.source_password
    "loader@127.0.0.1:${var.pg_port}/shop_next" = var.target_password
  }
}

resource "migration_endpoint" "legacy" {
  postgres = {
    host                = "127.0.0.1"
    port                = var.pg_port
    database            = "shop"
    username            = "migrator"
    password_wo         = var.source_password
    password_wo_version = 1
    sslmode             = "disable"
  }
}

resource "migration_endpoint" "next" {
  postgres = {
    host                = "127.0.0.1"
    port                = var.pg_port
    database            = "shop_next"
    username            = "loader"
    password_wo         = var.target_password
    password_wo_version = 1
    sslmode             = "disable"
  }
}

resource "migration_endpoint" "archive" {
  s3 = {
    url         = "file://${var.archive_dir}/"
    format      = "jsonl"
    compression = "gzip"
  }
}

data "migration_catalog" "legacy" {
  endpoint_id = migration_endpoint.legacy.id
  schemas     = ["shop"]
}

# Copy every table of the shop schema into shop_next and keep following it.
# The first apply creates publication and replication slot migration_shop on
# the source and loads the tables from the slot's snapshot (chunks copied in
# parallel with binary COPY, checkpoints on the target). From then on every
# plan counts the changes waiting in the slot and shows an in-place update
# when there are any; apply replays them. The source role needs REPLICATION
# and must own the tables (the demo seeds them as migrator).
resource "migration_task" "shop" {
  name               = "shop"
  source_endpoint_id = migration_endpoint.legacy.id
  target_endpoint_id = migration_endpoint.next.id
  mode               = "full_load_and_cdc"
  tables             = [{ source = "shop.*" }]
  parallelism        = 2
  # cdc_synced: the first apply also replays what the source committed during
  # the load, so it ends with the target caught up, not merely loaded
  # ("full_load" would leave those changes to the next plan). The demo's
  # source is idle during the load; the changes it writes afterwards are what
  # the next plan announces.
  wait_for = "cdc_synced"
}

output "migration" {
  value = {
    phase       = migration_task.shop.phase
    rows_copied = migration_task.shop.rows_copied
    started_at  = migration_task.shop.started_at
    finished_at = migration_task.shop.finished_at
    # Not pending_changes or lag_bytes: they move with the source, and an
    # output that changes makes the plan non-empty.
    slot_health = migration_task.shop.slot_health
    confirmed   = migration_task.shop.confirmed_lsn
    tables = [
      for t in migration_task.shop.progress : {
        target  = t.target
        rows    = t.rows
        seconds = t.seconds
      }
    ]
  }
}

output "source" {
  value = {
    id                = migration_endpoint.legacy.id
    server_version    = migration_endpoint.legacy.server_version
    cdc_ready         = migration_endpoint.legacy.logical_replication.ready
    tables            = data.migration_catalog.legacy.table_count
    estimated_rows    = data.migration_catalog.legacy.estimated_rows
    total_bytes       = data.migration_catalog.legacy.total_bytes
    needs_key_for_cdc = data.migration_catalog.legacy.tables_without_primary_key
  }
}

output "tables" {
  value = [
    for t in data.migration_catalog.legacy.tables : {
      name        = t.qualified_name
      kind        = t.kind
      rows        = t.estimated_rows
      bytes       = t.bytes
      primary_key = join(", ", t.primary_key)
      replica_id  = t.replica_identity
      columns     = length(t.columns)
      references  = [for fk in t.foreign_keys : fk.referenced_table]
    }
  ]
}
