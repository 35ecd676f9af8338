"""The errors of the durable client operations, which the HTTP API maps to status codes."""

from __future__ import annotations


class DurableError(Exception):
    """Base of the errors the durable client API maps to HTTP status codes."""


class InstanceNotFoundError(DurableError):
    pass


class InstanceGoneError(DurableError):
    """The instance exists but is completed, failed or terminated."""


class InstanceExistsError(DurableError):
    pass


class UnknownFunctionError(DurableError):
    pass
