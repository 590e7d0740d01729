terraform {
  required_version = ">= 1.11" # write-only attributes (password_wo)
  required_providers {
    migration = {
      source = "migrationworks/migration"
    }
  }
}

# The provider takes no configuration: every connection is a migration_endpoint.
provider "migration" {}
