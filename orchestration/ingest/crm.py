"""CRM and marketing exports (header required; Salesforce and HubSpot names as aliases).

Aliases (`EntitySpec.aliases`) map Salesforce-style (`Id`, `WhoId`, `CallType`, `CallObject`,
`CallDisposition`, `CallDurationInSeconds`, `CreatedDate`, `StageName`, `Amount`, `IsWon`,
`IsClosed`, `CloseDate`) and HubSpot-style (`hs_object_id`, `hs_timestamp`,
`hs_call_direction`, `hs_call_duration`, `hs_call_status`, `hs_call_from_number`,
`hs_call_to_number`, `createdate`, `dealstage`, `amount`, `closedate`) column names onto the
generic entities; `value_fixer` turns their values into the generic vocabulary at load
(see docs/formats.md): `Inbound`/`OUTBOUND` call types -> `inbound_call`/`outbound_call`,
HubSpot epoch milliseconds -> ISO 8601 UTC, `hs_call_duration` milliseconds -> seconds, the
remote party of `hs_call_from_number`/`hs_call_to_number` -> `phone`, and a HubSpot
`dealstage` of `closedwon`/`closedlost` -> `is_won`/`is_closed` when those are absent.
The entities themselves (columns, keys, aliases) are declared in `entities.py`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from orchestration.config import Config
from orchestration.ingest.csvtext import CsvText, Record, normalize_header
from orchestration.ingest.entities import ENTITIES, EntitySpec
from orchestration.ingest.normalize import PhoneNormalizer, RowReject, TimestampParser
from orchestration.ingest.rows import (
    FileRefused,
    ParsedFile,
    RowCollector,
    header_index,
)

log = logging.getLogger(__name__)

CRM_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz")


def entity_for(directory: str, file_name: str) -> EntitySpec | None:
    """The entity of a file under crm/ or marketing/ by its name prefix (case-insensitive)."""
    lower = file_name.lower()
    if not lower.endswith(CRM_SUFFIXES):
        return None
    for spec in ENTITIES.values():
        if spec.directory == directory and lower.startswith(spec.entity):
            return spec
    return None


@dataclass
class CrmContext:
    rel_path: str
    config: Config
    phones: PhoneNormalizer
    timestamps: TimestampParser
    zone: ZoneInfo | None  # crm_timezone (None = UTC)
    region: str  # crm_default_region


def read_entity(
    spec: EntitySpec, first: Record, records: Iterator[Record], text: CsvText, ctx: CrmContext
) -> ParsedFile:
    _, _, header_fields, _ = first
    assert header_fields is not None
    header = normalize_header(header_fields)
    positions, extras = header_index(header, spec.columns, spec.aliases)
    if not positions:
        raise FileRefused(
            f"no recognizable header (expected {spec.entity} columns: {', '.join(spec.columns)})"
        )
    for column in spec.required:
        if column not in positions:
            raise FileRefused(f"missing required column {column!r} ({spec.entity})")
    if extras:
        log.warning("%s: ignoring extra columns: %s", ctx.rel_path, ", ".join(extras))

    take = [positions.get(column, -1) for column in spec.columns]
    fix = value_fixer(spec, header, positions)
    index = {column: i for i, column in enumerate(spec.columns)}
    id_pos = [index[c] for c in spec.id_columns]
    single_id = len(id_pos) == 1
    ts_pos = [(index[c], c) for c in spec.timestamps]
    phone_pos = [index[c] for c in spec.phones]
    seconds_pos = [(index[c], c) for c in spec.seconds]
    interval = (
        (spec.timestamps.index(spec.interval[0]), spec.timestamps.index(spec.interval[1]))
        if spec.interval
        else None
    )
    max_bytes = int(ctx.config.vars["max_field_bytes"])
    max_hours = ctx.config.vars["max_call_hours"]
    max_seconds = float(max_hours) * 3600.0
    parse_ts = ctx.timestamps
    phones = ctx.phones
    zone, region = ctx.zone, ctx.region
    collector = RowCollector(text)

    for line, last, fields, error in records:
        values = collector.take_fields(line, last, fields, error, header, take, max_bytes)
        if values is None:
            continue
        if fix is not None:
            values = fix(fields, values)
        try:
            if single_id:
                key: object = values[id_pos[0]].strip()
                if not key:
                    raise RowReject(f"missing {spec.id_columns[0]}")
            else:
                key = tuple(values[p].strip() for p in id_pos)
                if not key[0]:  # type: ignore[index]
                    raise RowReject(f"missing {spec.id_columns[0]}")
            stamps = tuple(parse_ts(values[p], zone, name) for p, name in ts_pos)
            for p, name in seconds_pos:
                _check_seconds(values[p], name, max_seconds, max_hours)
            if interval is not None:
                start, end = stamps[interval[0]], stamps[interval[1]]
                if start is not None and end is not None and end < start:
                    raise RowReject(f"{spec.interval[1]} before {spec.interval[0]}")  # type: ignore[index]
        except RowReject as reject:
            collector.reject(line, last, str(reject))
            continue
        row = values
        for p in phone_pos:
            row += phones(values[p], region)
        collector.add(key, fields, line, last, row + stamps)

    parsed = ParsedFile(
        table=spec.table,
        format="csv",
        rows=[],
        row_columns=spec.row_columns,
        lines=[],
    )
    return collector.finish(parsed)


# -- Salesforce / HubSpot values -------------------------------------------------------------

CALL_TYPES = {"inbound": "inbound_call", "outbound": "outbound_call", "internal": "internal_call"}
# HubSpot writes these as epoch milliseconds in API exports (ISO 8601 in UI exports).
HUBSPOT_EPOCH_NAMES = frozenset(
    {"hs_timestamp", "createdate", "closedate", "lastmodifieddate", "hs_lastmodifieddate"}
)
HUBSPOT_WON, HUBSPOT_LOST = "closedwon", "closedlost"


def epoch_ms_to_iso(value: str) -> str:
    """`1736175600000` -> `2025-01-06T15:00:00.000Z`; anything else is returned unchanged."""
    text = value.strip()
    if not (text.isdigit() and 11 <= len(text) <= 14):
        return value
    try:
        instant = datetime.fromtimestamp(int(text) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return value
    return instant.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def ms_to_seconds(value: str) -> str:
    """HubSpot `hs_call_duration` milliseconds -> seconds text (`75000` -> `75`)."""
    try:
        seconds = Decimal(value.strip()) / 1000
    except (InvalidOperation, ValueError):
        return value  # left for the duration check to reject
    if not seconds.is_finite():
        return value
    text = format(seconds.normalize(), "f")
    return text


def value_fixer(
    spec: EntitySpec, header: list[str], positions: dict[str, int]
) -> Callable[[list[str], tuple], tuple] | None:
    """Per-row conversion of Salesforce/HubSpot values into the generic vocabulary, or None."""
    index = {column: i for i, column in enumerate(spec.columns)}
    source = {column: header[pos] for column, pos in positions.items()}
    steps: list[Callable[[list[str], list[str]], None]] = []

    for column in spec.timestamps:
        if source.get(column) in HUBSPOT_EPOCH_NAMES:
            i = index[column]
            steps.append(lambda fields, row, i=i: row.__setitem__(i, epoch_ms_to_iso(row[i])))
    if source.get("duration_seconds") == "hs_call_duration":
        i = index["duration_seconds"]
        steps.append(lambda fields, row, i=i: row.__setitem__(i, ms_to_seconds(row[i])))
    if source.get("activity_type") in ("calltype", "hs_call_direction"):
        i = index["activity_type"]

        def call_type(fields: list[str], row: list[str], i: int = i) -> None:
            row[i] = CALL_TYPES.get(row[i].strip().lower(), row[i])

        steps.append(call_type)
    if spec.entity == "activities" and "phone" not in positions:
        from_pos = header.index("hs_call_from_number") if "hs_call_from_number" in header else -1
        to_pos = header.index("hs_call_to_number") if "hs_call_to_number" in header else -1
        if from_pos >= 0 or to_pos >= 0:
            phone, kind = index["phone"], index["activity_type"]

            def remote_party(fields: list[str], row: list[str]) -> None:
                outbound = row[kind].strip().lower() == "outbound_call"
                pos = to_pos if outbound else from_pos
                row[phone] = fields[pos] if 0 <= pos < len(fields) else ""

            steps.append(remote_party)
    if source.get("stage") == "dealstage" and (
        "is_won" not in positions or "is_closed" not in positions
    ):
        stage, won, closed = index["stage"], index["is_won"], index["is_closed"]
        fill_won, fill_closed = "is_won" not in positions, "is_closed" not in positions

        def deal_flags(fields: list[str], row: list[str]) -> None:
            value = row[stage].strip().lower()
            if fill_won:
                row[won] = "true" if value == HUBSPOT_WON else "false"
            if fill_closed:
                row[closed] = "true" if value in (HUBSPOT_WON, HUBSPOT_LOST) else "false"

        steps.append(deal_flags)
    if not steps:
        return None

    def fix(fields: list[str], values: tuple) -> tuple:
        row = list(values)
        for step in steps:
            step(fields, row)
        return tuple(row)

    return fix


def _check_seconds(text: str, name: str, max_seconds: float, max_hours: object) -> None:
    value = text.strip()
    if not value:
        return
    try:
        seconds = float(value)
    except ValueError:
        raise RowReject(f"unparseable {name}: {text!r}") from None
    if not math.isfinite(seconds):
        raise RowReject(f"unparseable {name}: {text!r}")
    if seconds < 0:
        raise RowReject(f"negative {name}: {text!r}")
    if seconds > max_seconds:
        raise RowReject(f"{name} over max_call_hours ({max_hours})")
