"""Twilio call logs (Calls resource): CSV with a header, or JSON lines (`*.jsonl`).

Columns (case, spaces and `_` ignored, so `ParentCallSid`, `parent_call_sid` and
`Parent Call Sid` are one name): `Sid` (or `CallSid`), `ParentCallSid`, `From`, `To`,
`Direction` (`inbound`, `outbound-api`, `outbound-dial`), `Status`, `StartTime`, `EndTime`,
`Duration`, `AnsweredBy`. Times are RFC 2822 (`Thu, 03 Apr 2008 04:36:33 +0000`) or ISO 8601;
Twilio logs in GMT, so a time without an offset is UTC.

Per leg (spec: inputs-and-outputs.md, status table; docs/formats.md):
- `completed` with `AnsweredBy` `machine_*` -> `voicemail` (never a person);
- a child leg (`ParentCallSid` set) `completed` with `Duration` > 0 -> `answered`;
- an inbound parent `completed` -> `abandoned`: the IVR picked up, a person answered only if
  a child did (int_calls makes the call answered when any leg is);
- an `outbound-api` leg `completed` with `Duration` > 0 -> `answered` (the callee picked up);
  `completed` with no duration -> `no_answer`;
- `no-answer` / `busy` / `canceled` / `failed` -> `no_answer` / `busy` / `canceled` / `failed`;
  `queued`, `ringing`, `in-progress` rows are rejected (the call was not over).
Direction: `inbound` -> inbound, `outbound-api` -> outbound, `outbound-dial` -> the parent
leg's direction when the parent is in the file, else inbound. `answered_at` = `EndTime` -
`Duration` for answered and voicemail legs; `talk_seconds` = `Duration` for answered legs.
Twilio carries no IVR, queue or disposition.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from orchestration.ingest.csvtext import CsvText, Record
from orchestration.ingest.normalize import RowReject
from orchestration.ingest.rows import FileRefused, ParsedFile, RowCollector, oversize_field
from orchestration.ingest.schema import LEG_EXPORT_COLUMNS, LEG_ROW_NORMALIZED
from orchestration.ingest.telephony import (
    TELEPHONY_FORMATS,
    TELEPHONY_TABLE,
    TelephonyContext,
    TelephonyFormat,
)

FORMAT = "twilio"
FIELDS: tuple[str, ...] = (
    "sid",
    "parentcallsid",
    "from",
    "to",
    "direction",
    "status",
    "starttime",
    "endtime",
    "duration",
    "answeredby",
)
ALIASES = {"callsid": "sid", "parentsid": "parentcallsid"}
REQUIRED: tuple[str, ...] = ("sid", "from", "to", "direction", "status", "starttime", "endtime")
STATUSES = {
    "no-answer": "no_answer",
    "busy": "busy",
    "canceled": "canceled",
    "cancelled": "canceled",
    "failed": "failed",
}
UNFINISHED = frozenset({"queued", "ringing", "in-progress", "initiated"})
DIRECTIONS = {"inbound": "inbound", "outbound-api": "outbound", "outbound-dial": None}
_RFC2822 = re.compile(r"^[A-Za-z]{3},")


def twilio_name(name: str) -> str:
    key = "".join(ch for ch in name.strip().lower() if ch not in " _-")
    return ALIASES.get(key, key)


def _detect(header: list[str]) -> bool:
    names = {twilio_name(n) for n in header}
    return {"sid", "status", "direction", "starttime"} <= names


def _detect_path(path: str) -> bool:
    return path.lower().endswith((".jsonl", ".jsonl.gz"))


def parse_time(text: str, ctx: TelephonyContext, column: str) -> datetime | None:
    value = text.strip()
    if not value:
        return None
    if _RFC2822.match(value) or not value[:1].isdigit():
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            raise RowReject(f"unparseable timestamp in {column}: {text!r}") from None
        if parsed.tzinfo is None:
            return parsed
        return parsed.astimezone(UTC).replace(tzinfo=None)
    return ctx.timestamps(value, None, column)


# -- reading ------------------------------------------------------------------------------


def _csv_rows(first: Record, records: Iterator[Record], ctx: TelephonyContext):
    """(line, last line, field dict or None, error) per record of a CSV call log."""
    header_fields = first[2]
    assert header_fields is not None
    header = [twilio_name(n) for n in header_fields]
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        if name in FIELDS and name not in positions:
            positions[name] = index
    for name in REQUIRED:
        if name not in positions:
            raise FileRefused(f"missing required column {name!r} (twilio call log)")
    width = len(header)
    max_bytes = ctx.max_field_bytes

    def rows():
        for line, last, fields, error in records:
            if fields is None:
                yield line, last, None, error or "malformed CSV"
                continue
            if len(fields) != width:
                yield (
                    line,
                    last,
                    None,
                    (f"wrong field count: expected {width} fields, got {len(fields)}"),
                )
                continue
            too_big = oversize_field(fields, max_bytes, header_fields)
            if too_big:
                yield line, last, None, too_big
                continue
            yield line, last, {n: fields[i] for n, i in positions.items()}, None

    return rows()


def _json_rows(text: CsvText, ctx: TelephonyContext):
    max_bytes = ctx.max_field_bytes
    for number, raw in enumerate(text.lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            yield number, number, None, f"malformed JSON: {exc.args[0] if exc.args else exc}"
            continue
        if not isinstance(obj, dict):
            yield number, number, None, "malformed JSON: not an object"
            continue
        values: dict[str, str] = {}
        for key, value in obj.items():
            name = twilio_name(str(key))
            if name in FIELDS and name not in values:
                values[name] = "" if value is None else str(value)
        if len(line) * 4 > max_bytes:
            too_big = oversize_field(list(values.values()), max_bytes, list(values))
            if too_big:
                yield number, number, None, too_big
                continue
        yield number, number, values, None


def read_twilio(
    first: Record, records: Iterator[Record], text: CsvText, ctx: TelephonyContext
) -> ParsedFile:
    if _detect_path(ctx.rel_path) or (first[2] and first[2][0].lstrip().startswith("{")):
        source = _json_rows(text, ctx)
    else:
        source = _csv_rows(first, records, ctx)
    collector = RowCollector(text)
    items = []
    directions: dict[str, str] = {}
    for line, last, values, error in source:
        collector.rows_read += 1
        if values is None:
            collector.reject(line, last, error or "malformed row")
            continue
        items.append((line, last, values))
        direction = values.get("direction", "").strip().lower()
        sid = values.get("sid", "").strip()
        if sid and DIRECTIONS.get(direction):
            directions[sid] = DIRECTIONS[direction]  # type: ignore[assignment]

    site = ctx.file_site
    region = site.region
    phones = ctx.phones
    max_seconds, max_hours = ctx.max_call_seconds, ctx.config.vars["max_call_hours"]
    for line, last, values in items:
        try:
            row = _map_row(values, directions, ctx, site.name, max_seconds, max_hours)
        except RowReject as reject:
            collector.reject(line, last, str(reject))
            continue
        content = [values.get(name, "") for name in FIELDS]
        collector.add(
            row[0], content, line, last, row + phones(row[6], region) + phones(row[7], region)
        )
    parsed = ParsedFile(
        table=TELEPHONY_TABLE,
        format=FORMAT,
        rows=[],
        row_columns=[*LEG_EXPORT_COLUMNS, *(name for name, _ in LEG_ROW_NORMALIZED)],
        lines=[],
        constants={"source_format": FORMAT, "source_system": ctx.source_system(FORMAT)},
    )
    return collector.finish(parsed)


def _duration(text: str, max_seconds: float, max_hours: object) -> float | None:
    value = text.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise RowReject(f"unparseable Duration: {text!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise RowReject(f"unparseable Duration: {text!r}")
    if seconds > max_seconds:
        raise RowReject(f"Duration over max_call_hours ({max_hours})")
    return seconds


def _map_row(values, directions, ctx, site_name, max_seconds, max_hours) -> tuple:
    get = values.get
    sid = get("sid", "").strip()
    if not sid:
        raise RowReject("missing Sid")
    parent = get("parentcallsid", "").strip()
    direction_text = get("direction", "")
    direction_key = direction_text.strip().lower()
    if direction_key not in DIRECTIONS:
        raise RowReject(f"unknown direction {direction_text!r}")
    direction = DIRECTIONS[direction_key] or directions.get(parent, "inbound")
    status_text = get("status", "")
    status_key = status_text.strip().lower().replace("_", "-").replace(" ", "-")
    answered_by = get("answeredby", "").strip().lower()
    if status_key in UNFINISHED:
        raise RowReject(f"call not finished (Status {status_text!r})")
    if status_key != "completed" and status_key not in STATUSES:
        raise RowReject(f"unknown status {status_text!r}")
    started = parse_time(get("starttime", ""), ctx, "StartTime")
    ended = parse_time(get("endtime", ""), ctx, "EndTime")
    if started is None:
        raise RowReject("missing StartTime")
    if ended is None:
        raise RowReject("missing EndTime")
    if ended < started:
        raise RowReject("ended_at before started_at")
    if (ended - started).total_seconds() > max_seconds:
        raise RowReject(f"duration over max_call_hours ({max_hours})")
    duration = _duration(get("duration", ""), max_seconds, max_hours)

    if status_key == "completed":
        if answered_by.startswith("machine"):
            status = "voicemail"
        elif parent or direction_key != "inbound":
            status = "answered" if duration else "no_answer"
        else:
            status = "abandoned"  # an IVR completed the parent: not a person
    else:
        status = STATUSES[status_key]

    answered = talk = None
    if status in ("answered", "voicemail") and duration:
        answered = max(started, ended - timedelta(seconds=duration))
        if status == "answered":
            talk = (ended - answered).total_seconds()
    return (
        sid,
        parent,
        direction_text,
        get("starttime", ""),
        "",
        get("endtime", ""),
        get("from", ""),
        get("to", ""),
        status_text,
        "",
        "",
        "",
        "",
        "",
        get("duration", ""),
        site_name,
        status,
        direction,
        started,
        answered,
        ended,
        talk,
    )


TELEPHONY_FORMATS[FORMAT] = TelephonyFormat(FORMAT, _detect, read_twilio, _detect_path)
