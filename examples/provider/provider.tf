terraform {
  required_version = ">= 1.11" # write-only attributes (password_wo)
  required_providers {
    migration = {
      source = "migrationworks/migration"
    }
  }
}

variable "legacy_password" {
  type      = string
  sensitive = true
  ephemeral = true # never written to state or plan files
}

# The provider's configuration is optional. postgres_passwords serves the runs
# in which an endpoint's write-only password_wo is not sent (an apply that
# changes only a task, every destroy); keys are user@host:port/database.
provider "migration" {
  postgres_passwords = {
    "migrator@db.internal:5432/shop" = var.legacy_password
  }
}
