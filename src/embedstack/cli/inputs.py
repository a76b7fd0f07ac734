"""Reading texts from the files the commands take."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path


def iter_texts(path: Path, field: str) -> Iterator[str]:
    """Texts from a .txt file (one per line) or a .jsonl file (``field`` of each object), read lazily."""
    with open(path, encoding="utf-8") as handle:
        if path.suffix != ".jsonl":
            for line in handle:
                yield line.rstrip("\n")
            return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} line {number} is not valid JSON ({exc.msg}).") from None
            if not isinstance(record, dict) or not isinstance(record.get(field), str):
                raise ValueError(f"{path} line {number} has no string field {field!r}; choose one with --field.")
            yield record[field]
