"""Privacy: consent, retention, export and erasure, the audit trail and the retention scheduler."""
