"""Test support shared by the integration and end-to-end suites (services, app stack)."""
