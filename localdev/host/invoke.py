"""Call user functions the way the Python worker does, and log each invocation like ``func``.

The worker passes each binding's value as the keyword of the same name, adds ``context`` (a
``func.Context``) when the function has such a parameter that is not a binding, awaits ``async``
functions on its event loop and runs synchronous ones on a thread pool. Invocations are logged
as ``Executing 'Functions.<name>' (Reason=..., Id=...)`` / ``Executed ... (Succeeded|Failed,
Id=..., Duration=...ms)``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from localdev.host.app_loader import FunctionSpec

logger = logging.getLogger(__name__)


class InvocationContext:
    """What ``func.Context`` exposes to user code (the worker's own class is not public)."""

    def __init__(self, function_name: str, invocation_id: str, function_directory: str) -> None:
        self._function_name = function_name
        self._invocation_id = invocation_id
        self._function_directory = function_directory
        self._thread_local_storage = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def thread_local_storage(self) -> threading.local:
        return self._thread_local_storage

    @property
    def trace_context(self) -> None:
        return None

    @property
    def retry_context(self) -> None:
        return None


class Invoker:
    """Invokes indexed functions: async ones on the loop, sync ones on a bounded thread pool."""

    def __init__(self, function_directory: str, max_threads: int = 32) -> None:
        self._function_directory = function_directory
        self._pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="func-worker")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def invoke(
        self,
        spec: FunctionSpec,
        arguments: Mapping[str, Any],
        *,
        reason: str,
        executor: ThreadPoolExecutor | None = None,
        log_level: int = logging.INFO,
    ) -> Any:
        """Call ``spec`` with ``arguments`` (by binding name); log start, outcome and duration.

        ``executor`` overrides the thread pool for synchronous functions (the Durable engine
        runs orchestrators and activities on their own bounded pools).
        """
        invocation_id = str(uuid.uuid4())
        kwargs = dict(arguments)
        if spec.wants_context:
            kwargs["context"] = InvocationContext(
                spec.name, invocation_id, self._function_directory
            )
        logger.log(
            log_level,
            "Executing 'Functions.%s' (Reason='%s', Id=%s)",
            spec.name,
            reason,
            invocation_id,
        )
        started = time.perf_counter()
        outcome = "Failed"
        try:
            spec.check_bindings()
            if spec.is_async:
                result = await spec.func(**kwargs)
            else:
                loop = asyncio.get_running_loop()
                call = functools.partial(
                    contextvars.copy_context().run, functools.partial(spec.func, **kwargs)
                )
                result = await loop.run_in_executor(executor or self._pool, call)
            outcome = "Succeeded"
            return result
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000)
            logger.log(
                log_level if outcome == "Succeeded" else logging.ERROR,
                "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)",
                spec.name,
                outcome,
                invocation_id,
                duration_ms,
            )
