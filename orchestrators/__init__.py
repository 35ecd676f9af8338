"""Durable orchestrations (blueprints): deterministic, no I/O."""
