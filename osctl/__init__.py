"""osctl: the command-line client of the OutSystems-on-Azure function app's HTTP API.

`osctl.main:app` is the console script; `osctl.client` talks HTTP, `osctl.follow` follows a
running operation, `osctl.render` draws what the user sees and `osctl.redact` keeps keys out of it.
"""

__version__ = "0.1.0"
