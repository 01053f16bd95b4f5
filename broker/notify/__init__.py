"""Provider notifications: an outbox written with the audit entry, delivered to admin-registered
webhooks with Standard Webhooks signatures, retries and backoff (see docs/notifications.md)."""
