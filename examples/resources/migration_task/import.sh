# A task is imported by its name; its progress is read from the target's
# _migration schema on the next plan.
terraform import migration_task.shop shop
