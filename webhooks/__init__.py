"""Domain events through an outbox, delivered to subscribed webhook endpoints (SPEC §4.7)."""
