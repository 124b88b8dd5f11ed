"""Asterisk `queue_log` files: `epoch|callid|queue|agent|EVENT|data1..data5`, one event a line.

Detected by the file name (`queue_log*` under telephony/) or forced with format
`asterisk_queue_log` in telephony_sources. Every event is stored as text in
`raw.asterisk_queue_events` (with `event_at_utc` from the epoch, which is UTC whatever the
site's clock); the dbt model `int_asterisk_queue_calls` joins them to CDR calls on
`callid` = `uniqueid` and enriches the calls with the queue, the wait and the abandon
position (`ABANDON`, `EXITWITHTIMEOUT`, `EXITEMPTY`, `EXITWITHKEY` make an unanswered call
`abandoned`). Older files that write the data as one `data` field split the same way.

Rejects: fewer than 5 or more than 10 fields, an unparseable epoch, an empty event.
An identical line repeated in one file is rejected as `duplicate within file`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

from orchestration.ingest.csvtext import CsvText, Record
from orchestration.ingest.normalize import RowReject
from orchestration.ingest.rows import ParsedFile, RowCollector, oversize_field
from orchestration.ingest.schema import QUEUE_EVENT_COLUMNS
from orchestration.ingest.telephony import (
    TELEPHONY_FORMATS,
    TelephonyContext,
    TelephonyFormat,
    is_queue_log_name,
)

FORMAT = "asterisk_queue_log"
TABLE = "asterisk_queue_events"
_EPOCH = re.compile(r"^\d{9,11}(?:\.\d+)?$")


def _detect(header: list[str]) -> bool:
    """A pipe-delimited first line: `<epoch>|callid|queue|agent|EVENT...`."""
    if len(header) != 1:
        return False
    parts = header[0].split("|")
    return len(parts) >= 5 and bool(_EPOCH.match(parts[0].strip()))


def _detect_path(path: str) -> bool:
    return is_queue_log_name(path.rsplit("/", 1)[-1])


def read_queue_log(
    first: Record, records: Iterator[Record], text: CsvText, ctx: TelephonyContext
) -> ParsedFile:
    collector = RowCollector(text)
    max_bytes = ctx.max_field_bytes
    names = list(QUEUE_EVENT_COLUMNS)
    for number, raw in enumerate(text.lines, start=1):
        line = raw.rstrip("\r\n")
        if not line:
            continue
        collector.rows_read += 1
        fields = line.split("|")
        try:
            if not 5 <= len(fields) <= len(QUEUE_EVENT_COLUMNS):
                raise RowReject(
                    f"wrong field count: expected 5 to {len(QUEUE_EVENT_COLUMNS)} "
                    f"|-separated fields, got {len(fields)}"
                )
            too_big = oversize_field(fields, max_bytes, names)
            if too_big:
                raise RowReject(too_big)
            epoch = fields[0].strip()
            if not _EPOCH.match(epoch):
                raise RowReject(f"unparseable epoch {fields[0]!r}")
            if not fields[4].strip():
                raise RowReject("missing event")
            at = datetime.fromtimestamp(float(epoch), UTC).replace(tzinfo=None)
        except (RowReject, OverflowError, ValueError, OSError) as reject:
            collector.reject(number, number, str(reject))
            continue
        values = tuple(fields) + ("",) * (len(QUEUE_EVENT_COLUMNS) - len(fields))
        collector.add(line, [line], number, number, (*values, at))
    parsed = ParsedFile(
        table=TABLE,
        format=FORMAT,
        rows=[],
        row_columns=[*QUEUE_EVENT_COLUMNS, "event_at_utc"],
        lines=[],
        constants={"source_system": ctx.source_system("asterisk_cdr")},
    )
    return collector.finish(parsed)


TELEPHONY_FORMATS[FORMAT] = TelephonyFormat(FORMAT, _detect, read_queue_log, _detect_path)
