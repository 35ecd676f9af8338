"""Activities that take and answer messages (`outsystems.messages`), not JSON.

`serves(contract)` turns `body(request: <message>) -> <message>` into the function the worker
calls: it reads the request with the contract and writes the answer's JSON. It goes below
`@redacting` (which needs the raw request to name the platform), which goes below
`@bp.activity_trigger(input_name="request")`. The function the worker sees takes `request`
(the binding's name) annotated `Any`, and keeps the body's name, which must be the contract's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from outsystems.messages import Contract, to_wire

Request = TypeVar("Request")
Answer = TypeVar("Answer")


def serves(
    contract: Contract[Request, Answer],
) -> Callable[[Callable[[Request], Answer]], Callable[[Any], Any]]:
    """The activity function serving `contract` with `body` (see the module docstring)."""

    def decorate(body: Callable[[Request], Answer]) -> Callable[[Any], Any]:
        if body.__name__ != contract.name:
            raise ValueError(f"{body.__name__} does not serve the contract of {contract.name}")

        def run(request: Any) -> Any:
            return to_wire(body(contract.read_request(request)))

        run.__name__ = run.__qualname__ = body.__name__
        run.__doc__ = body.__doc__
        run.__module__ = body.__module__
        return run

    return decorate
