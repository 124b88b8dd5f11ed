"""Collecting the rows of one file: within-file duplicates, rejects, and the counts."""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from typing import Any

from orchestration.ingest.csvtext import CsvText

SUPERSEDED_WITHIN_FILE = "superseded within file"
DUPLICATE_WITHIN_FILE = "duplicate within file"
GZIP_MAGIC = b"\x1f\x8b"


class FileRefused(Exception):
    """A file that cannot be read at all; the message is the ledger reason."""


@dataclass
class ParsedFile:
    """The outcome of reading one file (before anything is written)."""

    table: str
    format: str
    rows: list[tuple[Any, ...]]  # per-row values in the reader's column order
    row_columns: list[str]
    lines: list[int]  # `_line` of each row
    constants: dict[str, Any] = field(default_factory=dict)  # per-file columns
    rejects: list[tuple[int, str, str]] = field(default_factory=list)  # (line, raw text, reason)
    rows_read: int = 0
    # Rows for other raw tables (schema.SIDE_TABLES): table -> (columns, rows); written with
    # the file's `_file`, `_load_id`, `_load_seq` in the same transaction.
    side_rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = field(default_factory=dict)
    # Columnar path (fastpath.py): the rows are in this temporary DuckDB relation instead of
    # `rows` (its columns: `row_columns`, `_line`, and `_bad`, all false).
    relation: str | None = None
    relation_rows: int = 0

    @property
    def rows_loaded(self) -> int:
        return self.relation_rows if self.relation else len(self.rows)

    @property
    def rows_rejected(self) -> int:
        return len(self.rejects)


class RowCollector:
    """Accepted rows and rejects of one file, keeping the newest row per id.

    Within one file, a second valid row with the same id and different content wins and the
    first is rejected as `superseded within file`; an identical second row is rejected as
    `duplicate within file`. Rows rejected for another reason take part in neither.
    """

    def __init__(self, text: CsvText):
        self._text = text
        self.rows: list[tuple[Any, ...] | None] = []
        self.lines: list[int] = []
        self._spans: list[tuple[int, int]] = []
        self.rejects: list[tuple[int, str, str]] = []
        self._seen: dict[Any, tuple[int, tuple[str, ...]]] = {}
        self.rows_read = 0
        self._dropped = 0

    def reject(self, first: int, last: int, reason: str) -> None:
        self.rejects.append((first, self._text.raw_text(first, last), reason))

    def take_fields(
        self,
        line: int,
        last: int,
        fields: list[str] | None,
        error: str | None,
        header: list[str],
        take: list[int],
        max_bytes: int,
    ) -> tuple[str, ...] | None:
        """Count a record of a file with a header; reject it for its shape (malformed CSV,
        wrong field count, a field over max_field_bytes) or return the wanted columns in
        order (-1 = a missing optional column, read as empty)."""
        self.rows_read += 1
        if fields is None:
            self.reject(line, last, error or "malformed CSV")
            return None
        if len(fields) != len(header):
            self.reject(
                line,
                last,
                f"wrong field count: expected {len(header)} fields, got {len(fields)}",
            )
            return None
        too_big = oversize_field(fields, max_bytes, header)
        if too_big:
            self.reject(line, last, too_big)
            return None
        return tuple([fields[i] if i >= 0 else "" for i in take])

    def add(self, key: Any, content: list[str], first: int, last: int, row: tuple) -> None:
        fields = tuple(content)
        seen = self._seen.get(key)
        if seen is not None:
            index, previous = seen
            if previous == fields:
                self.reject(first, last, DUPLICATE_WITHIN_FILE)
                return
            old_first, old_last = self._spans[index]
            self.reject(old_first, old_last, SUPERSEDED_WITHIN_FILE)
            self.rows[index] = None
            self._dropped += 1
        self._seen[key] = (len(self.rows), fields)
        self.rows.append(row)
        self.lines.append(first)
        self._spans.append((first, last))

    def finish(self, parsed: ParsedFile) -> ParsedFile:
        if self._dropped:
            kept = [(r, ln) for r, ln in zip(self.rows, self.lines, strict=True) if r is not None]
            parsed.rows = [r for r, _ in kept]  # type: ignore[misc]
            parsed.lines = [ln for _, ln in kept]
        else:
            parsed.rows = self.rows  # type: ignore[assignment]
            parsed.lines = self.lines
        parsed.rejects = sorted(self.rejects, key=lambda r: r[0])
        parsed.rows_read = self.rows_read
        if parsed.rows_read != parsed.rows_loaded + parsed.rows_rejected:  # pragma: no cover
            raise RuntimeError("ingest bug: rows read != rows loaded + rows rejected")
        return parsed


def header_index(
    header: list[str], wanted: tuple[str, ...], aliases: dict[str, str] | None = None
) -> tuple[dict[str, int], list[str]]:
    """Map wanted column names to positions in a normalized header (first occurrence wins).

    `aliases` maps other export names (normalized) to wanted names; a wanted name present
    under its own name wins over an alias. Returns (positions, extra header names).
    """
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        if name in wanted and name not in positions:
            positions[name] = index
    used = set(positions.values())
    if aliases:
        for index, name in enumerate(header):
            target = aliases.get(name)
            if target and target not in positions and index not in used:
                positions[target] = index
                used.add(index)
    extras = [name for index, name in enumerate(header) if index not in used]
    return positions, extras


def oversize_field(row: list[str], max_bytes: int, header: list[str]) -> str | None:
    """Reject reason when a field's UTF-8 size exceeds max_bytes, else None (cheap check first)."""
    if max(map(len, row), default=0) * 4 <= max_bytes:
        return None
    for index, value in enumerate(row):
        if len(value) > max_bytes // 4:
            size = len(value.encode("utf-8", errors="surrogatepass"))
            if size > max_bytes:
                name = header[index] if index < len(header) else f"#{index + 1}"
                return f"field over max_field_bytes ({max_bytes}): {name} has {size} bytes"
    return None


def uncompress(rel: str, data: bytes) -> bytes:
    """The file's text bytes; FileRefused when empty or not the compression its name says."""
    if not data:
        raise FileRefused("empty file")
    if rel.lower().endswith(".gz"):
        if not data.startswith(GZIP_MAGIC):
            raise FileRefused("not gzip: the name ends in .gz but the content is not gzip")
        try:
            payload = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise FileRefused(f"corrupt gzip: {exc}") from None
        if not payload:
            raise FileRefused("empty file (after decompression)")
        return payload
    if data.startswith(GZIP_MAGIC):
        raise FileRefused("gzip-compressed content in a file whose name does not end in .gz")
    return data
