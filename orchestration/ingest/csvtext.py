"""CSV records with their physical line numbers and original text.

Python's `csv` module reads the records (it tolerates odd quoting); the text is split into
physical lines first (`\\n`, `\\r\\n` or `\\r`) so that a record's line number (1-based, header =
line 1) and, for rejects, its original text (all the lines of a multi-line quoted record) can
be recovered without per-row bookkeeping.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

_FIELD_LIMIT = 2**31 - 1  # fields over max_field_bytes are rejected by the readers, not csv


def _raise_field_limit() -> None:
    if csv.field_size_limit() < _FIELD_LIMIT:
        csv.field_size_limit(_FIELD_LIMIT)


# (first line, last line, fields or None, csv error message or None)
Record = tuple[int, int, list[str] | None, str | None]


@dataclass
class CsvText:
    lines: list[str]

    @classmethod
    def from_text(cls, text: str) -> CsvText:
        return cls(io.StringIO(text, newline="").readlines())

    def raw_text(self, first: int, last: int) -> str:
        """Original text of lines first..last (1-based), without the final line end."""
        text = "".join(self.lines[first - 1 : last])
        if text.endswith("\r\n"):
            return text[:-2]
        if text.endswith(("\n", "\r")):
            return text[:-1]
        return text

    def records(self) -> Iterator[Record]:
        """Every non-blank record. A blank line (no characters but the line end) is no record."""
        _raise_field_limit()
        reader = csv.reader(self.lines)
        previous = 0
        total = len(self.lines)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                first, previous = previous + 1, reader.line_num
                yield first, reader.line_num, None, f"malformed CSV: {exc}"
                continue
            first, previous = previous + 1, reader.line_num
            if not row:
                continue
            if reader.line_num == total and self._unterminated(first, reader.line_num):
                yield (
                    first,
                    reader.line_num,
                    None,
                    "truncated last line (unterminated quoted field)",
                )
                continue
            yield first, reader.line_num, row, None

    def _unterminated(self, first: int, last: int) -> bool:
        """The last record ends inside a quoted field (the file was cut off)."""
        raw = "".join(self.lines[first - 1 : last])
        if raw.count('"') % 2 == 0:
            return False
        try:
            for _ in csv.reader(io.StringIO(raw, newline=""), strict=True):
                pass
        except csv.Error as exc:
            return "unexpected end of data" in str(exc)
        return False


def normalize_header(header: list[str]) -> list[str]:
    return [name.strip().lower() for name in header]
