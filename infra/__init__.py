"""Platform code, no business: settings, database, group commit, logs, metrics, migrations, pagination."""
