"""The embedding cache's storage: one SQLite file (WAL mode), safe for several processes and threads.

Rows map a 32-byte key (model fingerprint, encode settings and input bytes, see keys.py) to a vector's bytes and
dtype. Reads mark rows used; a size cap evicts the least recently used rows. Every write is one transaction, so a
process killed in the middle of one leaves the file as it was before it. A file that is not a readable cache
(garbage, a truncated copy, another program's database) is logged, moved aside as ``PATH.corrupt-<time>`` and
replaced by an empty cache: the cache never fails an encode.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
DEFAULT_MAX_BYTES = 2 * 1024**3  # vector bytes kept before the least recently used are evicted
_BUSY_TIMEOUT_MS = 60_000
_CHECKED_FILE_BYTES = 256 * 1024**2  # files up to this size get a full quick_check when opened
_QUERY_CHUNK = 500  # keys per SELECT (SQLite limits the parameters of one statement)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # A rowid table: its leaves hold rows of up to ~4 kB inline (a WITHOUT ROWID table spills anything over ~1 kB,
    # a 384-dim float32 vector among them, to an overflow page of its own: 6x the file size).
    "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, settings TEXT NOT NULL, dtype TEXT NOT NULL, "
    "value BLOB NOT NULL, nbytes INTEGER NOT NULL, last_used INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS vectors_last_used ON vectors (last_used)",
)


@dataclass
class CacheInfo:
    """What ``embedstack cache info`` shows."""

    path: Path
    vectors: int
    vector_bytes: int
    file_bytes: int
    settings: int  # distinct (model, settings) groups
    max_bytes: int


class EmbeddingStore:
    """A persistent key -> vector store on SQLite.

    Args:
        path: The cache file (created, with its folder, when missing).
        max_bytes: Vector bytes to keep; past it the least recently used vectors are evicted.

    Example:
        >>> import tempfile, os
        >>> store = EmbeddingStore(os.path.join(tempfile.mkdtemp(), "cache.sqlite"))
        >>> store.put_many([(b"k" * 32, "settings", "torch.float32", b"four")])
        >>> store.get_many([b"k" * 32, b"x" * 32])
        {b'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk': ('torch.float32', b'four')}
        >>> store.info().vectors
        1
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"The cache's max_bytes must be a positive integer, got {max_bytes!r}.")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None
        self._pid = -1
        # The table's bytes as this process last counted them plus what it wrote since (None: count on the next
        # write). Summing the whole table reads the whole file, so it is done only when this estimate crosses the
        # cap; other processes' writes show up at that count (each process evicts when its own estimate crosses).
        self._bytes_estimate: int | None = None

    # A store travels to worker processes as its path and settings; each process opens its own connection.
    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], max_bytes=state["max_bytes"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"EmbeddingStore({str(self.path)!r}, max_bytes={self.max_bytes})"

    # ----- reading and writing ----------------------------------------------------------------------------
    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, tuple[str, bytes]]:
        """The stored ``(dtype, value)`` of each key found; the hits are marked as used. Errors give misses."""
        found: dict[bytes, tuple[str, bytes]] = {}
        try:
            with self._lock:
                connection = self._connect()
                for start in range(0, len(keys), _QUERY_CHUNK):
                    chunk = list(keys[start : start + _QUERY_CHUNK])
                    marks = ",".join("?" * len(chunk))
                    query = f"SELECT key, dtype, value FROM vectors WHERE key IN ({marks})"  # noqa: S608 (marks only)
                    for key, dtype, value in connection.execute(query, chunk):
                        found[bytes(key)] = (dtype, bytes(value))
                if found:
                    self._touch(connection, list(found))
        except sqlite3.Error as exc:
            self._failed("reading", exc)
        return found

    def put_many(self, rows: Iterable[tuple[bytes, str, str, bytes]]) -> None:
        """Store ``(key, settings, dtype, value)`` rows in one transaction, then evict past the size cap."""
        now = time.time_ns()
        records = [(key, settings, dtype, value, len(value), now) for key, settings, dtype, value in rows]
        if not records:
            return
        try:
            with self._lock:
                connection = self._connect()
                with _transaction(connection):
                    connection.executemany(
                        "INSERT OR REPLACE INTO vectors (key, settings, dtype, value, nbytes, last_used) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        records,
                    )
                self._evict(connection, sum(record[4] for record in records))
        except sqlite3.Error as exc:
            self._failed("writing", exc)

    def info(self) -> CacheInfo:
        """Counts and sizes."""
        with self._lock:
            connection = self._connect()
            vectors, total = connection.execute("SELECT COUNT(*), COALESCE(SUM(nbytes), 0) FROM vectors").fetchone()
            groups = connection.execute("SELECT COUNT(DISTINCT settings) FROM vectors").fetchone()[0]
        size = sum(p.stat().st_size for p in _files(self.path) if p.exists())
        return CacheInfo(self.path, int(vectors), int(total), size, int(groups), self.max_bytes)

    def clear(self) -> int:
        """Delete every vector and shrink the file; returns how many were deleted."""
        with self._lock:
            connection = self._connect()
            with _transaction(connection):
                deleted = connection.execute("DELETE FROM vectors").rowcount
            connection.execute("VACUUM")
            self._bytes_estimate = None
        return int(deleted)

    def close(self) -> None:
        """Close this process's connection (a later call opens it again)."""
        with self._lock:
            if self._connection is not None:
                try:
                    self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # fold the WAL into the file
                except sqlite3.Error as exc:
                    logger.debug("Embedding cache %s: no checkpoint on close (%s)", self.path, exc)
                self._connection.close()
                self._connection = None

    # ----- internals --------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None and self._pid == os.getpid():
            return self._connection
        try:
            self._connection = self._open()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):  # locked, no permission, no disk: not the file's fault
                raise
            self._move_aside(exc)
            self._connection = self._open()
        self._pid = os.getpid()
        self._bytes_estimate = None
        return self._connection

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                     check_same_thread=False)  # fmt: skip
        try:
            connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            if connection.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                logger.warning("Embedding cache %s could not switch to WAL mode; writers will wait longer.", self.path)
            connection.execute("PRAGMA synchronous = NORMAL")
            small = not self.path.exists() or self.path.stat().st_size <= _CHECKED_FILE_BYTES
            problem = connection.execute("PRAGMA quick_check").fetchone()[0] if small else "ok"
            if problem != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {problem}")
            with _transaction(connection):
                for statement in _SCHEMA:
                    connection.execute(statement)
                connection.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            version = connection.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()[0]
            if version != str(SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"schema version {version}, this embedstack reads {SCHEMA_VERSION}")
            columns = {row[1] for row in connection.execute("PRAGMA table_info(vectors)")}
            if not {"key", "settings", "dtype", "value", "nbytes", "last_used"} <= columns:
                raise sqlite3.DatabaseError(f"table vectors has columns {sorted(columns)}, not the cache's")
        except BaseException:
            connection.close()
            raise
        return connection

    def _move_aside(self, exc: BaseException) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{os.getpid()}")
        logger.warning(
            "Embedding cache %s is not a readable cache (%s: %s). It was moved to %s and an empty cache is used "
            "in its place; delete the moved file when you no longer need it.",
            self.path, type(exc).__name__, exc, target,
        )  # fmt: skip
        for source in _files(self.path):
            if source.exists():
                os.replace(source, target.with_name(target.name + source.name[len(self.path.name) :]))

    def _failed(self, action: str, exc: sqlite3.Error) -> None:
        """A read or write that failed: recover from a corrupt file, otherwise log and go on without the cache."""
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            with self._lock:
                if self._connection is not None:
                    self._connection.close()
                    self._connection = None
                self._move_aside(exc)
            return
        logger.warning("Embedding cache %s: %s failed (%s); these vectors are not cached.", self.path, action, exc)

    def _touch(self, connection: sqlite3.Connection, keys: list[bytes]) -> None:
        now = time.time_ns()
        try:
            with _transaction(connection):
                connection.executemany("UPDATE vectors SET last_used = ? WHERE key = ?", [(now, k) for k in keys])
        except sqlite3.OperationalError as exc:  # busy past the timeout: the read still counts, the order is stale
            logger.debug("Embedding cache %s: could not mark %d vectors used (%s)", self.path, len(keys), exc)

    def _evict(self, connection: sqlite3.Connection, written: int) -> None:
        if self._bytes_estimate is not None:
            self._bytes_estimate += written
            if self._bytes_estimate <= self.max_bytes:
                return
        total = connection.execute("SELECT COALESCE(SUM(nbytes), 0) FROM vectors").fetchone()[0]
        self._bytes_estimate = total
        if total <= self.max_bytes:
            return
        target = int(self.max_bytes * 0.9)  # evict a tenth more, so that not every write evicts
        with _transaction(connection):
            while total > target:
                rows = connection.execute(
                    "SELECT key, nbytes FROM vectors ORDER BY last_used ASC LIMIT 1000"
                ).fetchall()
                if not rows:
                    break
                drop, freed = [], 0
                for key, nbytes in rows:
                    if total - freed <= target:
                        break
                    drop.append((key,))
                    freed += nbytes
                connection.executemany("DELETE FROM vectors WHERE key = ?", drop)
                total -= freed
        self._bytes_estimate = total
        logger.info("Embedding cache %s: evicted the least recently used vectors down to %d bytes", self.path, total)


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self.connection.execute("BEGIN IMMEDIATE")
        return self.connection

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        self.connection.execute("COMMIT" if kind is None else "ROLLBACK")


def _files(path: Path) -> list[Path]:
    """The database file and its WAL and shared-memory companions."""
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
