"""Notification channels: one module per destination kind, each declaring its limits and
implementing render + send (`channels.base`); the delivery engine does the rest."""
