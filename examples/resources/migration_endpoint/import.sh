# An endpoint is imported by its id: the secret-free URL of its settings.
# The password cannot be imported; password_wo in the configuration supplies it.
terraform import migration_endpoint.legacy 'postgres://migrator@db.internal:5432/shop?connect_timeout=10&sslmode=verify-full'
terraform import migration_endpoint.orders 'dynamodb://eu-west-1'
terraform import migration_endpoint.archive 's3://archive/shop/?compression=gzip&format=jsonl&region=eu-west-1'
