variable "legacy_password" {
  type      = string
  sensitive = true
  ephemeral = true # never written to state or plan files
}

# A PostgreSQL source. The password is write-only: it is checked on every
# plan and apply and never stored. Bump password_wo_version after rotating it.
resource "migration_endpoint" "legacy" {
  postgres = {
    host                = "db.internal"
    port                = 5432
    database            = "shop"
    username            = "migrator"
    password_wo         = var.legacy_password
    password_wo_version = 1
    sslmode             = "verify-full"
    sslrootcert         = "/etc/ssl/certs/rds-global-bundle.pem"
  }
}

# A DynamoDB target; credentials come from the standard AWS chain.
resource "migration_endpoint" "orders" {
  dynamodb = {
    region   = "eu-west-1"
    role_arn = "arn:aws:iam::123456789012:role/migrator"
  }
}

# An S3 archive: one prefix per table, gzip-compressed JSON Lines.
resource "migration_endpoint" "archive" {
  s3 = {
    url         = "s3://archive/shop/"
    region      = "eu-west-1"
    format      = "jsonl"
    compression = "gzip"
  }
}

# A local directory works the same way, for tests and one-off exports.
resource "migration_endpoint" "local" {
  s3 = {
    url    = "file:///var/lib/archive/"
    format = "csv"
  }
}

# CDC readiness, as the last check saw it.
output "legacy_cdc_ready" {
  value = migration_endpoint.legacy.logical_replication.ready
}
