"""The OutSystems-on-Azure domain: pure Python, no Azure SDK imports and no I/O."""
