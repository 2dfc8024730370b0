"""Custom CRM fields (seed section 15): admins define typed fields of leads and customers
(`definitions`); the values live on the row's `custom_fields` JSON and are checked on every
write, filtered on and written to CSV (`values`)."""
