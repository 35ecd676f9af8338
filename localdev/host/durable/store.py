"""The task hub in SQLite: instances, histories, inboxes, activity work items, entities, timers.

Every state change is committed here before the engine acts on it, in one transaction per step
(an orchestration episode, an activity result, an entity batch), so that a host killed at any
point restarts from a consistent hub: messages not yet consumed are delivered again, activity
work items still present are run again (at-least-once, as in Azure), future timer messages are
re-armed. WAL with ``synchronous=NORMAL`` survives the process being killed.

All access happens on the host's event-loop thread; a lock still guards the connection so that
tests may read from another thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT,
    execution_id TEXT NOT NULL,
    runtime_status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    created_time TEXT NOT NULL,
    last_updated_time TEXT NOT NULL,
    parent_instance_id TEXT,
    parent_execution_id TEXT,
    parent_task_id INTEGER,
    engine_state TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS history (
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    visible_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_instance ON messages (instance_id, id);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (visible_at);
CREATE TABLE IF NOT EXISTS activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    input TEXT
);
CREATE TABLE IF NOT EXISTS entities (
    entity_id TEXT PRIMARY KEY,
    state TEXT,
    last_modified TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entity_ops (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entity_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    input TEXT,
    signal INTEGER NOT NULL,
    request_id TEXT,
    parent_instance_id TEXT,
    parent_execution_id TEXT
);
CREATE INDEX IF NOT EXISTS entity_ops_by_entity ON entity_ops (entity_id, id);
CREATE TABLE IF NOT EXISTS timer_status (
    function_name TEXT PRIMARY KEY,
    last TEXT,
    next TEXT,
    last_updated TEXT
);
"""


@dataclass
class InstanceRow:
    instance_id: str
    name: str
    version: str | None
    execution_id: str
    runtime_status: str
    input: str | None
    output: str | None
    custom_status: str | None
    created_time: str
    last_updated_time: str
    parent_instance_id: str | None
    parent_execution_id: str | None
    parent_task_id: int | None
    engine_state: dict[str, Any]


@dataclass
class MessageRow:
    id: int
    instance_id: str
    execution_id: str | None
    kind: str
    payload: dict[str, Any]
    visible_at: str


@dataclass
class ActivityRow:
    id: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None


@dataclass
class EntityOpRow:
    id: int
    entity_id: str
    operation: str
    input: str | None
    signal: bool
    request_id: str | None
    parent_instance_id: str | None
    parent_execution_id: str | None


_INSTANCE_COLUMNS = (
    "instance_id, name, version, execution_id, runtime_status, input, output, custom_status, "
    "created_time, last_updated_time, parent_instance_id, parent_execution_id, parent_task_id, "
    "engine_state"
)


def _instance(row: Sequence[Any]) -> InstanceRow:
    return InstanceRow(
        instance_id=row[0],
        name=row[1],
        version=row[2],
        execution_id=row[3],
        runtime_status=row[4],
        input=row[5],
        output=row[6],
        custom_status=row[7],
        created_time=row[8],
        last_updated_time=row[9],
        parent_instance_id=row[10],
        parent_execution_id=row[11],
        parent_task_id=row[12],
        engine_state=json.loads(row[13] or "{}"),
    )


class TaskHubStore:
    """SQLite-backed task hub; ``path`` may be ``":memory:"``."""

    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic step: everything inside commits together or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # --- instances -------------------------------------------------------------------------

    def get_instance(self, instance_id: str) -> InstanceRow | None:
        rows = self._query(
            f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?", (instance_id,)
        )
        return _instance(rows[0]) if rows else None

    def query_instances(
        self,
        *,
        statuses: Sequence[str] = (),
        created_from: str | None = None,
        created_to: str | None = None,
        prefix: str | None = None,
    ) -> list[InstanceRow]:
        clauses: list[str] = []
        params: list[Any] = []
        if statuses:
            clauses.append(f"runtime_status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        if created_from:
            clauses.append("created_time >= ?")
            params.append(created_from)
        if created_to:
            clauses.append("created_time <= ?")
            params.append(created_to)
        if prefix:
            clauses.append("substr(instance_id, 1, ?) = ?")
            params.extend([len(prefix), prefix])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(
            f"SELECT {_INSTANCE_COLUMNS} FROM instances {where} ORDER BY created_time, instance_id",
            params,
        )
        return [_instance(row) for row in rows]

    @staticmethod
    def put_instance(db: sqlite3.Connection, row: InstanceRow) -> None:
        db.execute(
            f"INSERT OR REPLACE INTO instances ({_INSTANCE_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.instance_id,
                row.name,
                row.version,
                row.execution_id,
                row.runtime_status,
                row.input,
                row.output,
                row.custom_status,
                row.created_time,
                row.last_updated_time,
                row.parent_instance_id,
                row.parent_execution_id,
                row.parent_task_id,
                json.dumps(row.engine_state),
            ),
        )

    @staticmethod
    def delete_instance(db: sqlite3.Connection, instance_id: str) -> None:
        db.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,))
        db.execute("DELETE FROM history WHERE instance_id = ?", (instance_id,))
        db.execute("DELETE FROM messages WHERE instance_id = ?", (instance_id,))
        db.execute("DELETE FROM activities WHERE instance_id = ?", (instance_id,))

    # --- history ---------------------------------------------------------------------------

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,)
        )
        return [json.loads(row[0]) for row in rows]

    @staticmethod
    def append_history(
        db: sqlite3.Connection, instance_id: str, start: int, events: Sequence[dict[str, Any]]
    ) -> None:
        db.executemany(
            "INSERT INTO history (instance_id, seq, event) VALUES (?, ?, ?)",
            [(instance_id, start + i, json.dumps(e)) for i, e in enumerate(events)],
        )

    @staticmethod
    def clear_history(db: sqlite3.Connection, instance_id: str) -> None:
        db.execute("DELETE FROM history WHERE instance_id = ?", (instance_id,))

    # --- messages --------------------------------------------------------------------------

    @staticmethod
    def add_message(
        db: sqlite3.Connection,
        instance_id: str,
        kind: str,
        payload: dict[str, Any],
        visible_at: str,
        execution_id: str | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO messages (instance_id, execution_id, kind, payload, visible_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (instance_id, execution_id, kind, json.dumps(payload), visible_at),
        )

    def messages(self, instance_id: str, visible_before: str | None = None) -> list[MessageRow]:
        sql = (
            "SELECT id, instance_id, execution_id, kind, payload, visible_at FROM messages "
            "WHERE instance_id = ?"
        )
        params: list[Any] = [instance_id]
        if visible_before is not None:
            sql += " AND visible_at <= ?"
            params.append(visible_before)
        rows = self._query(sql + " ORDER BY id", params)
        return [MessageRow(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows]

    @staticmethod
    def delete_messages(db: sqlite3.Connection, ids: Sequence[int]) -> None:
        db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])

    def instances_with_messages(self, visible_before: str) -> list[str]:
        rows = self._query(
            "SELECT DISTINCT instance_id FROM messages WHERE visible_at <= ?", (visible_before,)
        )
        return [row[0] for row in rows]

    def future_messages(self, after: str) -> list[tuple[str, str]]:
        rows = self._query(
            "SELECT visible_at, instance_id FROM messages WHERE visible_at > ?", (after,)
        )
        return [(row[0], row[1]) for row in rows]

    # --- activities ------------------------------------------------------------------------

    @staticmethod
    def add_activity(
        db: sqlite3.Connection,
        instance_id: str,
        execution_id: str,
        task_id: int,
        name: str,
        input_text: str | None,
    ) -> int:
        cursor = db.execute(
            "INSERT INTO activities (instance_id, execution_id, task_id, name, input) "
            "VALUES (?, ?, ?, ?, ?)",
            (instance_id, execution_id, task_id, name, input_text),
        )
        return int(cursor.lastrowid or 0)

    def activities(self) -> list[ActivityRow]:
        rows = self._query(
            "SELECT id, instance_id, execution_id, task_id, name, input FROM activities ORDER BY id"
        )
        return [ActivityRow(*row) for row in rows]

    def activity(self, activity_id: int) -> ActivityRow | None:
        rows = self._query(
            "SELECT id, instance_id, execution_id, task_id, name, input FROM activities "
            "WHERE id = ?",
            (activity_id,),
        )
        return ActivityRow(*rows[0]) if rows else None

    @staticmethod
    def delete_activity(db: sqlite3.Connection, activity_id: int) -> bool:
        cursor = db.execute("DELETE FROM activities WHERE id = ?", (activity_id,))
        return cursor.rowcount > 0

    # --- entities --------------------------------------------------------------------------

    def entity_state(self, entity_id: str) -> str | None:
        """The entity's serialized state, or ``None`` when the entity does not exist."""
        rows = self._query("SELECT state FROM entities WHERE entity_id = ?", (entity_id,))
        return rows[0][0] if rows else None

    def entity_exists(self, entity_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM entities WHERE entity_id = ?", (entity_id,)))

    @staticmethod
    def put_entity(
        db: sqlite3.Connection, entity_id: str, state: str | None, exists: bool, now: str
    ) -> None:
        if exists:
            db.execute(
                "INSERT OR REPLACE INTO entities (entity_id, state, last_modified) "
                "VALUES (?, ?, ?)",
                (entity_id, state, now),
            )
        else:
            db.execute("DELETE FROM entities WHERE entity_id = ?", (entity_id,))

    @staticmethod
    def add_entity_op(
        db: sqlite3.Connection,
        entity_id: str,
        operation: str,
        input_text: str | None,
        *,
        signal: bool,
        request_id: str | None = None,
        parent_instance_id: str | None = None,
        parent_execution_id: str | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO entity_ops (entity_id, operation, input, signal, request_id, "
            "parent_instance_id, parent_execution_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                entity_id,
                operation,
                input_text,
                int(signal),
                request_id,
                parent_instance_id,
                parent_execution_id,
            ),
        )

    def entity_ops(self, entity_id: str, limit: int) -> list[EntityOpRow]:
        rows = self._query(
            "SELECT id, entity_id, operation, input, signal, request_id, parent_instance_id, "
            "parent_execution_id FROM entity_ops WHERE entity_id = ? ORDER BY id LIMIT ?",
            (entity_id, limit),
        )
        return [EntityOpRow(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7]) for r in rows]

    def entities_with_ops(self) -> list[str]:
        return [row[0] for row in self._query("SELECT DISTINCT entity_id FROM entity_ops")]

    @staticmethod
    def delete_entity_ops(db: sqlite3.Connection, ids: Sequence[int]) -> None:
        db.executemany("DELETE FROM entity_ops WHERE id = ?", [(i,) for i in ids])

    # --- timer triggers --------------------------------------------------------------------

    def timer_status(self, function_name: str) -> tuple[str | None, str | None]:
        rows = self._query(
            "SELECT last, next FROM timer_status WHERE function_name = ?", (function_name,)
        )
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def put_timer_status(self, function_name: str, last: str, next_: str, now: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO timer_status (function_name, last, next, last_updated) "
                "VALUES (?, ?, ?, ?)",
                (function_name, last, next_, now),
            )
