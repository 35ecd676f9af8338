"""Development tooling: the ARM simulator, the local Functions/Durable host and the demo runner.

Never deployed (see .funcignore) and never imported by the app's own packages.
"""
