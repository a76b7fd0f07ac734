"""Corpus files for batch jobs: .txt (one text a line), .jsonl (a field of each object) and Parquet (a column).

A corpus is an ordered list of files; its rows are numbered from 0 across them, in that order, so a row number
names the same text on every run and every machine. Rows are read lazily, as Arrow tables of a few thousand
rows, and any range of rows can be read on its own (what a Ray task or a resumed job needs). Needs pyarrow
(the ``ray`` extra, or ``pip install pyarrow``); the CLI imports this module only for such jobs.
"""

from __future__ import annotations

import glob
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from embedstack.errors import CorpusError

Kind = Literal["txt", "jsonl", "parquet"]
KINDS: dict[str, Kind] = {".txt": "txt", ".jsonl": "jsonl", ".parquet": "parquet"}
READ_ROWS = 4096  # rows per Arrow table read


@dataclass(frozen=True)
class Source:
    """One corpus file: its path, its format, and where the texts (and optional ids) are."""

    path: str
    kind: Kind
    column: str = "text"
    id_column: str | None = None


def expand_inputs(patterns: Sequence[str | Path], column: str = "text", id_column: str | None = None) -> list[Source]:
    """The corpus files named by ``patterns``: files, folders (their .parquet, .jsonl and .txt files) or globs.

    Files of a folder or a glob come sorted by name; the order of the patterns is kept.
    """
    paths: list[Path] = []
    for pattern in map(str, patterns):
        if any(char in pattern for char in "*?["):
            matches = sorted(Path(match) for match in glob.glob(pattern))
            if not matches:
                raise CorpusError(f"--input {pattern} matches no file. Check the pattern (quote it for the shell).")
            paths += matches
        elif Path(pattern).is_dir():
            found = sorted(path for path in Path(pattern).iterdir() if path.suffix in KINDS and path.is_file())
            if not found:
                raise CorpusError(f"--input {pattern} is a folder with no .parquet, .jsonl or .txt file in it.")
            paths += found
        elif not Path(pattern).exists():
            raise CorpusError(f"--input {pattern} does not exist.")
        else:
            paths.append(Path(pattern))
    sources = []
    for path in dict.fromkeys(paths):
        kind = KINDS.get(path.suffix)
        if kind is None:
            raise CorpusError(f"{path} is not a .parquet, .jsonl or .txt file; rename it or convert it.")
        sources.append(Source(str(path), kind, column, id_column))
    return sources


def count_rows(source: Source) -> int:
    """Rows in ``source``: from the Parquet footer, or by reading the lines (blank .jsonl lines are no rows)."""
    if source.kind == "parquet":
        return _parquet_metadata(source).num_rows
    return sum(1 for number, line in _text_lines(source) if _row(source, number, line))  # parsed: errors surface now


def iter_tables(source: Source, start: int = 0, stop: int | None = None) -> Iterator[pa.Table]:
    """Rows ``start`` to ``stop`` of ``source`` as tables with a ``text`` column (and the id column, if any)."""
    if source.kind == "parquet":
        yield from _parquet_tables(source, start, stop)
        return
    lines = itertools.islice(_text_lines(source), start, stop)  # the rows before start are skipped unparsed
    while chunk := [_row(source, number, line) for number, line in itertools.islice(lines, READ_ROWS)]:
        yield _table([text for text, _ in chunk], [key for _, key in chunk], source.id_column)


def read_range(sources: Sequence[Source], offsets: Sequence[int], start: int, stop: int) -> pa.Table:
    """Rows ``start`` to ``stop`` of the whole corpus (``offsets``: each file's first row number), one table."""
    tables: list[pa.Table] = []
    for source, first, last in zip(sources, offsets, [*offsets[1:], None]):
        if (last is not None and last <= start) or first >= stop:
            continue
        tables += iter_tables(source, max(0, start - first), stop - first)
    table = pa.concat_tables(tables) if tables else _table([], [], None)
    if table.num_rows != stop - start:
        raise CorpusError(f"The corpus has fewer rows than when the job was planned (rows {start}-{stop}); rerun it.")
    return table


def _table(texts: list[str], ids: list[Any], id_column: str | None) -> pa.Table:
    columns: dict[str, Any] = {"text": pa.array(texts, type=pa.string())}
    if id_column is not None:
        columns[id_column] = pa.array(ids)
    return pa.table(columns)


def _text_lines(source: Source) -> Iterator[tuple[int, str]]:
    """(line number, line) of each row of a .txt or .jsonl file (blank .jsonl lines are no rows), unparsed."""
    try:
        with open(source.path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if source.kind == "txt" or line.strip():
                    yield number, line
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{source.path} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None


def _row(source: Source, number: int, line: str) -> tuple[str, Any]:
    """The text and id of one line of a .txt (id: its row number) or .jsonl file."""
    return (line.rstrip("\n"), number - 1) if source.kind == "txt" else _json_row(source, number, line)


def _json_row(source: Source, number: int, line: str) -> tuple[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{source.path} line {number} is not valid JSON ({exc.msg}).") from None
    if not isinstance(record, dict) or not isinstance(record.get(source.column), str):
        raise CorpusError(
            f"{source.path} line {number} has no string field {source.column!r}; choose one with --column."
        )
    if source.id_column is not None and source.id_column not in record:
        raise CorpusError(f"{source.path} line {number} has no field {source.id_column!r} (--id-column).")
    return record[source.column], record.get(source.id_column) if source.id_column else None


def _parquet_metadata(source: Source, handle: pq.ParquetFile | None = None) -> pq.FileMetaData:
    """The footer of a Parquet file (of ``handle`` when it is open already), with the columns checked."""
    try:
        metadata = pq.read_metadata(source.path) if handle is None else handle.metadata
        schema = metadata.schema.to_arrow_schema()
    except (pa.ArrowException, OSError) as exc:
        raise CorpusError(
            f"{source.path} is not a readable Parquet file ({exc}). It may be damaged or in another format: "
            "give .parquet, .jsonl or .txt files."
        ) from None
    names = schema.names
    if source.column not in names:
        raise CorpusError(f"{source.path} has no column {source.column!r} (columns: {', '.join(names)}); use --column.")
    kind = schema.field(source.column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise CorpusError(f"{source.path} column {source.column!r} holds {kind}, not strings; use --column.")
    if source.id_column is not None and source.id_column not in names:
        raise CorpusError(f"{source.path} has no column {source.id_column!r} (columns: {', '.join(names)}).")
    return metadata


def _parquet_tables(source: Source, start: int, stop: int | None) -> Iterator[pa.Table]:
    columns = [source.column] + ([source.id_column] if source.id_column else [])
    try:
        handle = pq.ParquetFile(source.path)
    except (pa.ArrowException, OSError):
        _parquet_metadata(source)  # raises a CorpusError that says what is wrong with the file
        raise
    _parquet_metadata(source, handle)
    try:
        groups: list[int] = []
        position = offset = 0
        for index in range(handle.metadata.num_row_groups):  # skip the row groups outside the range unread
            rows = handle.metadata.row_group(index).num_rows
            if offset + rows > start and (stop is None or offset < stop):
                position = position if groups else offset  # the file row number of the first row read
                groups.append(index)
            offset += rows
        if not groups:
            return
        for batch in handle.iter_batches(batch_size=READ_ROWS, row_groups=groups, columns=columns):
            low = max(start - position, 0)
            high = batch.num_rows if stop is None else min(stop - position, batch.num_rows)
            position += batch.num_rows
            if high > low:
                yield _renamed(pa.Table.from_batches([batch.slice(low, high - low)]), source)
            if stop is not None and position >= stop:
                return
    except pa.ArrowException as exc:
        raise CorpusError(f"{source.path} could not be read as Parquet ({exc}).") from None


def _renamed(table: pa.Table, source: Source) -> pa.Table:
    texts = table.column(source.column)
    if texts.null_count:
        raise CorpusError(f"{source.path} column {source.column!r} has {texts.null_count} null values; fill them in.")
    columns = {"text": texts.cast(pa.string())}
    if source.id_column:
        columns[source.id_column] = table.column(source.id_column)
    return pa.table(columns)
