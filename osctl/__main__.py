"""Lets `python -m osctl` run the CLI exactly as the `osctl` console script does."""

from osctl.main import app

app(prog_name="osctl")
