"""The outbox: notification rows, claim/record/release/replay, pull mode, alerts, retention
and (PostgreSQL) its time partitions."""
