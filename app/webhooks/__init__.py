"""Webhooks: subscriptions, the event outbox, signing secrets and signing, the doorbell
that wakes the dispatcher."""
