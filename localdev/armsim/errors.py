"""ARM's error envelope and the error codes the simulator answers with.

Every failure leaves the simulator as `{"error": {"code", "message", "target"?, "details"?}}`,
the shape azure-core parses into `HttpResponseError.error` (ODataV4 format).
"""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    """An ARM error response: HTTP status, ARM error code, message and optional target."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details or []
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        """The JSON body ARM sends for this error."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target is not None:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        return {"error": error}


def invalid_parameter(target: str, message: str) -> ArmError:
    """400 `InvalidParameter` naming the offending property."""
    return ArmError(400, "InvalidParameter", message, target=target)


def missing_property(target: str) -> ArmError:
    """400 `InvalidParameter` for a required property that is absent (compute's wording)."""
    leaf = target.rsplit(".", 1)[-1]
    return invalid_parameter(target, f"Required parameter '{leaf}' is missing (null).")


def resource_group_not_found(name: str) -> ArmError:
    """404 `ResourceGroupNotFound` (ARM's wording)."""
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


def resource_not_found(full_type: str, name: str, resource_group: str) -> ArmError:
    """404 `ResourceNotFound` (ARM's wording)."""
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{full_type}/{name}' under resource group '{resource_group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def parent_not_found(parent_name: str) -> ArmError:
    """404 `ParentResourceNotFound` for a nested resource whose parent does not exist."""
    return ArmError(
        404,
        "ParentResourceNotFound",
        "Can not perform requested operation on nested resource. "
        f"Parent resource '{parent_name}' not found.",
    )


def another_operation_in_progress(status_url: str) -> ArmError:
    """409 `AnotherOperationInProgress`: the resource (or its parent) is busy."""
    return ArmError(
        409,
        "AnotherOperationInProgress",
        "Another operation on this or dependent resource is in progress. To retrieve status of "
        f"the operation use uri: {status_url}.",
    )


def invalid_reference(referenced: str, referencing: str) -> ArmError:
    """400 `InvalidResourceReference` for a reference to a resource that does not exist."""
    return ArmError(
        400,
        "InvalidResourceReference",
        f"Resource {referenced} referenced by resource {referencing} was not found. Please make "
        "sure that the referenced resource exists, and that both resources are in the same region.",
    )


def reference_not_provisioned(referenced: str, referencing: str, state: str) -> ArmError:
    """400 `ReferencedResourceNotProvisioned`: the referenced resource is still being written."""
    return ArmError(
        400,
        "ReferencedResourceNotProvisioned",
        f"Cannot proceed with operation because resource {referenced} used by resource "
        f"{referencing} is not in Succeeded state. Resource is in {state} state.",
    )
