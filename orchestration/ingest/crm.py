"""CRM and marketing exports (header required; a few Salesforce/HubSpot names as aliases)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from orchestration.config import Config
from orchestration.ingest.csvtext import CsvText, Record, normalize_header
from orchestration.ingest.normalize import PhoneNormalizer, RowReject, TimestampParser
from orchestration.ingest.rows import (
    FileRefused,
    ParsedFile,
    RowCollector,
    header_index,
    oversize_field,
)

log = logging.getLogger(__name__)

CRM_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz")


@dataclass(frozen=True)
class EntitySpec:
    entity: str  # file-name prefix and ledger `entity`
    directory: str  # crm / marketing
    table: str  # raw table
    columns: tuple[str, ...]  # export columns, in table order
    id_columns: tuple[str, ...]  # within-file duplicate key (first one must be non-empty)
    required: tuple[str, ...]  # header columns without which the file is refused
    timestamps: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    seconds: tuple[str, ...] = ()  # durations: numeric, >= 0, <= max_call_hours
    interval: tuple[str, str] | None = None  # (from, to): to must not precede from
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def row_columns(self) -> list[str]:
        out = list(self.columns)
        for col in self.phones:
            out += [f"{col}_e164", f"{col}_is_valid", f"{col}_is_unknown", f"{col}_key"]
            out.append(f"{col}_digits")
        out += [f"{col}_utc" for col in self.timestamps]
        return out


ENTITIES: dict[str, EntitySpec] = {
    spec.entity: spec
    for spec in (
        EntitySpec(
            entity="contacts",
            directory="crm",
            table="crm_contacts",
            columns=(
                "contact_id",
                "phone",
                "mobile_phone",
                "email",
                "created_at",
                "updated_at",
                "lifecycle",
                "owner",
            ),
            id_columns=("contact_id",),
            required=("contact_id", "created_at"),
            timestamps=("created_at", "updated_at"),
            phones=("phone", "mobile_phone"),
            aliases={
                "id": "contact_id",
                "record id": "contact_id",
                "phone number": "phone",
                "mobilephone": "mobile_phone",
                "mobile phone number": "mobile_phone",
                "createddate": "created_at",
                "create date": "created_at",
                "lastmodifieddate": "updated_at",
                "last modified date": "updated_at",
                "lifecycle stage": "lifecycle",
                "ownerid": "owner",
                "contact owner": "owner",
            },
        ),
        EntitySpec(
            entity="opportunities",
            directory="crm",
            table="crm_opportunities",
            columns=(
                "opportunity_id",
                "contact_id",
                "created_at",
                "stage",
                "amount",
                "closed_at",
                "is_won",
                "is_closed",
            ),
            id_columns=("opportunity_id",),
            required=("opportunity_id", "created_at"),
            timestamps=("created_at", "closed_at"),
            aliases={
                "id": "opportunity_id",
                "record id": "opportunity_id",
                "contactid": "contact_id",
                "createddate": "created_at",
                "create date": "created_at",
                "stagename": "stage",
                "deal stage": "stage",
                "closedate": "closed_at",
                "close date": "closed_at",
                "iswon": "is_won",
                "isclosed": "is_closed",
            },
        ),
        EntitySpec(
            entity="activities",
            directory="crm",
            table="crm_activities",
            columns=(
                "activity_id",
                "contact_id",
                "activity_type",
                "logged_at",
                "phone",
                "pbx_call_id",
                "disposition",
                "duration_seconds",
            ),
            id_columns=("activity_id",),
            required=("activity_id", "logged_at"),
            timestamps=("logged_at",),
            phones=("phone",),
            seconds=("duration_seconds",),
            aliases={
                "id": "activity_id",
                "whoid": "contact_id",
                "callobject": "pbx_call_id",
                "calldisposition": "disposition",
                "calldurationinseconds": "duration_seconds",
            },
        ),
        EntitySpec(
            entity="form_submissions",
            directory="crm",
            table="crm_form_submissions",
            columns=(
                "submission_id",
                "submitted_at",
                "phone",
                "email",
                "form_type",
                "source",
                "campaign",
            ),
            id_columns=("submission_id",),
            required=("submission_id", "submitted_at"),
            timestamps=("submitted_at",),
            phones=("phone",),
        ),
        EntitySpec(
            entity="tracking_numbers",
            directory="marketing",
            table="marketing_tracking_numbers",
            columns=(
                "tracking_number",
                "campaign",
                "source",
                "channel",
                "default_intent",
                "valid_from",
                "valid_to",
            ),
            # One number can carry several campaigns over time (or, wrongly, at once: the
            # tracking_numbers gate must see that), so the row key includes both.
            id_columns=("tracking_number", "campaign", "valid_from"),
            required=("tracking_number", "valid_from"),
            timestamps=("valid_from", "valid_to"),
            phones=("tracking_number",),
            interval=("valid_from", "valid_to"),
        ),
    )
}


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
    width = len(header)
    max_bytes = int(ctx.config.vars["max_field_bytes"])
    max_hours = ctx.config.vars["max_call_hours"]
    max_seconds = float(max_hours) * 3600.0
    parse_ts = ctx.timestamps
    phones = ctx.phones
    zone, region = ctx.zone, ctx.region
    collector = RowCollector(text)

    for line, last, fields, error in records:
        collector.rows_read += 1
        if fields is None:
            collector.reject(line, last, error or "malformed CSV")
            continue
        if len(fields) != width:
            collector.reject(
                line, last, f"wrong field count: expected {width} fields, got {len(fields)}"
            )
            continue
        too_big = oversize_field(fields, max_bytes, header)
        if too_big:
            collector.reject(line, last, too_big)
            continue
        values = tuple([fields[i] if i >= 0 else "" for i in take])
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
