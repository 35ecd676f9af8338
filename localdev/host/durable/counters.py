"""Counters of the work the engine has done, for benchmarks: read-only to everyone else.

Per orchestrator function: its episodes, the history events each episode replayed (the stored
events given to the SDK as already played, ``IsPlayed``) in total and at most; per activity
function: its executions. The engine counts; nothing reads the counters back to decide anything.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class EpisodeFigures:
    """One orchestrator function's episodes and the history they replayed."""

    episodes: int = 0
    replayed: int = 0
    max_replayed: int = 0

    def add(self, replayed: int) -> EpisodeFigures:
        """These figures plus one episode that replayed ``replayed`` events."""
        return EpisodeFigures(
            self.episodes + 1, self.replayed + replayed, max(self.max_replayed, replayed)
        )


@dataclass(frozen=True)
class WorkSnapshot:
    """The counters at one moment."""

    orchestrators: dict[str, EpisodeFigures]
    activities: dict[str, int]

    @property
    def episodes(self) -> int:
        """Orchestrator episodes of every function."""
        return sum(f.episodes for f in self.orchestrators.values())

    @property
    def replayed(self) -> int:
        """History events replayed by every episode."""
        return sum(f.replayed for f in self.orchestrators.values())

    @property
    def max_replayed(self) -> int:
        """The longest history a single episode replayed."""
        return max((f.max_replayed for f in self.orchestrators.values()), default=0)

    @property
    def activity_executions(self) -> int:
        """Activity executions of every function."""
        return sum(self.activities.values())


class WorkCounters:
    """Counts episodes and activity executions; safe to read from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._episodes: dict[str, EpisodeFigures] = {}
        self._activities: Counter[str] = Counter()

    def episode(self, name: str, replayed: int) -> None:
        """One episode of orchestrator ``name`` that replayed ``replayed`` history events."""
        with self._lock:
            self._episodes[name] = self._episodes.get(name, EpisodeFigures()).add(replayed)

    def activity(self, name: str) -> None:
        """One execution of activity ``name``."""
        with self._lock:
            self._activities[name] += 1

    def snapshot(self) -> WorkSnapshot:
        """A copy of the counters now."""
        with self._lock:
            return WorkSnapshot(dict(self._episodes), dict(self._activities))
