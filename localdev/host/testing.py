"""Start and stop the local host in-process, on a free port, for tests and benchmarks.

``running_host`` is an async context manager for tests that run on an event loop;
``ThreadedHost`` runs the host on its own loop in a background thread for synchronous code.
Both restore ``os.environ`` afterwards (loading settings writes into it, as Core Tools does).
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Coroutine, Mapping
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

from localdev.host.host import LocalHost
from localdev.host.settings import build_config

T = TypeVar("T")

#: How long `ThreadedHost` waits for the host to stop before it gives up, says on stderr where
#: the host's threads and tasks are, and raises `TimeoutError`.
STOP_TIMEOUT_SECONDS: Final = 60.0


@asynccontextmanager
async def running_host(
    app_dir: Path,
    *,
    settings_file: Path | None = None,
    values: Mapping[str, str] | None = None,
    hub_path: str = ":memory:",
    require_keys: bool = False,
    record_episodes: bool = False,
) -> AsyncIterator[LocalHost]:
    """The app at ``app_dir`` served on ``127.0.0.1`` and a free port, task hub in memory."""
    saved = dict(os.environ)
    host: LocalHost | None = None
    try:
        config = build_config(
            app_dir,
            settings_file,
            extra_values=values,
            hub_path=hub_path,
            require_keys=require_keys,
        )
        host = LocalHost(config, port=0, record_episodes=record_episodes)
        await host.start()
        yield host
    finally:
        if host is not None:
            await host.stop()
        os.environ.clear()
        os.environ.update(saved)


class ThreadedHost:
    """The host on a background thread with its own event loop."""

    def __init__(
        self,
        app_dir: Path,
        *,
        settings_file: Path | None = None,
        values: Mapping[str, str] | None = None,
        hub_path: str = ":memory:",
        require_keys: bool = False,
    ) -> None:
        self._args: dict[str, Any] = {
            "settings_file": settings_file,
            "values": values,
            "hub_path": hub_path,
            "require_keys": require_keys,
        }
        self._app_dir = app_dir
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._context: Any = None
        self.host: LocalHost | None = None
        self.stop_timeout = STOP_TIMEOUT_SECONDS

    @property
    def base_url(self) -> str:
        assert self.host is not None
        return self.host.base_url

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run a coroutine on the host's loop and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout)

    def __enter__(self) -> ThreadedHost:
        self._thread.start()

        async def enter() -> LocalHost:
            self._context = running_host(self._app_dir, **self._args)
            host: LocalHost = await self._context.__aenter__()
            return host

        self.host = self.call(enter())
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._context is not None:
            try:
                self.call(self._context.__aexit__(None, None, None), self.stop_timeout)
            except TimeoutError:
                sys.stderr.write(self.where_stuck())
                raise
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def where_stuck(self) -> str:
        """Where a host that does not stop is: every thread's stack (the loop's first) and
        what each of the loop's tasks waits on. Read from another thread while the loop runs,
        so a task set that changes meanwhile is reported as such."""
        out = io.StringIO()
        out.write(f"The local host did not stop within {self.stop_timeout:g} s.\n")
        names = {thread.ident: thread.name for thread in threading.enumerate()}
        frames = sys._current_frames()
        order = sorted(frames, key=lambda ident: ident != self._thread.ident)
        for ident in order:
            loop = " (the host's loop)" if ident == self._thread.ident else ""
            out.write(f"\n--- thread {names.get(ident, ident)}{loop}\n")
            out.write("".join(traceback.format_stack(frames[ident])))
        try:
            tasks = list(asyncio.all_tasks(self._loop))
        except RuntimeError as error:  # the loop changed its task set while it was read
            out.write(f"\n--- the loop's tasks could not be read: {error}\n")
            tasks = []
        for task in tasks:
            out.write(f"\n--- task {task.get_name()}\n")
            task.print_stack(limit=8, file=out)
        return out.getvalue()
