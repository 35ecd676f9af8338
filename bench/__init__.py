"""Benchmarks of the app on the local host and the ARM simulator (run with `python -m bench`)."""
