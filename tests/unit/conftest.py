"""Unit-test fixtures shared by every module here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_scaler_leases() -> Iterator[None]:
    """Each test starts without the scalers' leases an earlier test's fakes gave
    (`services.scaler_client` remembers them per process)."""
    from services.scaler_client import forget_leases

    forget_leases()
    yield
    forget_leases()
