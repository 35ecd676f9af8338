"""A local Azure Resource Manager: the real azure-mgmt SDKs talk HTTP to it, unchanged.

Generic ARM semantics per resource type (see `catalog.py`), long-running operations on a clock
(`latency.py`), validation as ARM does it (`validation.py`), throttling, fault injection and an
admin API for tests. Run it with `python -m localdev.armsim`, or in-process with
`localdev.armsim.testing.running_simulator()`. It knows nothing about the app that uses it.
"""
