"""The Durable Task side of the local host: task hub store, orchestration engine, entities, API."""
