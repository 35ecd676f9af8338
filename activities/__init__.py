"""Durable activities (blueprints): thin, idempotent adapters that do the I/O."""
