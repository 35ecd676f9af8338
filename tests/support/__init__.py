"""Test support shared by the suites: the app stack, Azurite, replaying orchestrations."""
