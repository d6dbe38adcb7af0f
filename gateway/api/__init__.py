"""The teller HTTP API: authentication, idempotency, approvals and the operations."""
