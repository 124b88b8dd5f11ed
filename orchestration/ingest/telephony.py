"""Telephony exports: format registry, `telephony_sources` matching, the generic reader.

Formats are pluggable: `TELEPHONY_FORMATS` maps a format name to a `TelephonyFormat` (a
header detector, optionally a file-name detector, and a reader producing rows of
`raw.telephony_legs` or another raw table). `generic` lives here; `asterisk_cdr`
(asterisk.py), `asterisk_queue_log` (queue_log.py) and `twilio` (twilio.py) register
themselves when the package is imported (see docs/formats.md). A format forced in
`telephony_sources` but not registered refuses the file.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from zoneinfo import ZoneInfo

from orchestration.config import Config, ConfigError
from orchestration.ingest.csvtext import CsvText, Record, normalize_header
from orchestration.ingest.normalize import (
    PhoneNormalizer,
    RowReject,
    TimestampParser,
    zone_for,
)
from orchestration.ingest.rows import (
    FileRefused,
    ParsedFile,
    RowCollector,
    header_index,
)
from orchestration.ingest.schema import LEG_EXPORT_COLUMNS, LEG_ROW_NORMALIZED

log = logging.getLogger(__name__)

TELEPHONY_TABLE = "telephony_legs"
# File names read under telephony/ (lower-cased suffixes); other files there are refused.
TELEPHONY_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".jsonl", ".jsonl.gz")
QUEUE_LOG_PREFIX = "queue_log"  # Asterisk queue_log files keep their own name (queue_log*)


def is_queue_log_name(name: str) -> bool:
    return name.lower().startswith(QUEUE_LOG_PREFIX)


GENERIC_STATUSES = frozenset(
    {"answered", "no_answer", "busy", "abandoned", "voicemail", "canceled", "failed"}
)
GENERIC_DIRECTIONS = frozenset({"inbound", "outbound"})
GENERIC_REQUIRED: tuple[str, ...] = (
    "call_id",
    "direction",
    "started_at",
    "ended_at",
    "from_number",
    "to_number",
    "status",
)
UNRECOGNIZED_LAYOUT = "unrecognized telephony layout (set format in telephony_sources)"


@dataclass(frozen=True)
class SiteInfo:
    name: str
    zone: ZoneInfo | None  # None: the site's telephony clock is UTC
    region: str


@dataclass
class TelephonyContext:
    """What a telephony reader needs besides the file's records."""

    rel_path: str  # relative to the landing directory (`_file`)
    source_path: str  # relative to telephony/ (matched against telephony_sources patterns)
    source: dict[str, str] | None  # the first matching telephony_sources row
    config: Config
    phones: PhoneNormalizer
    timestamps: TimestampParser
    sites: dict[str, SiteInfo]  # by lower-cased site name
    file_site: SiteInfo  # telephony_sources site, else the default site

    @property
    def max_call_seconds(self) -> float:
        return float(self.config.vars["max_call_hours"]) * 3600.0

    @property
    def max_field_bytes(self) -> int:
        return int(self.config.vars["max_field_bytes"])

    def source_system(self, format_name: str) -> str:
        return ((self.source or {}).get("source_system") or "").strip() or format_name


Reader = Callable[[Record, Iterator[Record], CsvText, TelephonyContext], ParsedFile]


@dataclass(frozen=True)
class TelephonyFormat:
    name: str
    detect: Callable[[list[str]], bool]  # normalized first record -> is this format
    read: Reader
    # path under telephony/ -> this format by its name alone (queue_log*, *.jsonl)
    detect_path: Callable[[str], bool] | None = None


def build_sites(config: Config) -> dict[str, SiteInfo]:
    sites: dict[str, SiteInfo] = {}
    for row in config.sites:
        clock = (row.get("telephony_clock") or "local").strip().lower()
        if clock not in ("local", "utc"):
            raise ConfigError(
                f"sites: telephony_clock of site {row['site']!r} must be local or utc, "
                f"got {clock!r}"
            )
        zone = None if clock == "utc" else zone_for(row["time_zone"])
        sites[row["site"].strip().lower()] = SiteInfo(
            row["site"], zone, row["default_region"].strip().upper()
        )
    return sites


def match_source(
    source_path: str, telephony_sources: list[dict[str, str]]
) -> dict[str, str] | None:
    """The first telephony_sources row whose glob `pattern` matches the path under telephony/."""
    for row in telephony_sources:
        pattern = (row.get("pattern") or "").strip()
        if pattern and fnmatchcase(source_path, pattern):
            return row
    return None


def detect_format(
    header: list[str], path: str, telephony_sources: list[dict[str, str]]
) -> str | None:
    """Format of a telephony file: forced by its telephony_sources row, else detected.

    `header` is the first record of the file, `path` the file's path under telephony/.
    Returns the format name (possibly one not registered yet when forced), or None when no
    registered format recognizes the layout.
    """
    source = match_source(path, telephony_sources)
    forced = ((source or {}).get("format") or "").strip().lower()
    if forced and forced != "auto":
        return forced
    if ((source or {}).get("columns") or "").strip():
        return "asterisk_cdr"  # a cdr_custom column mapping names the format
    for name, fmt in TELEPHONY_FORMATS.items():
        if fmt.detect_path is not None and fmt.detect_path(path):
            return name
    normalized = normalize_header(header)
    for name, fmt in TELEPHONY_FORMATS.items():
        if fmt.detect(normalized):
            return name
    return None


# -- generic ------------------------------------------------------------------------------


def _detect_generic(header: list[str]) -> bool:
    names = set(header)
    return "call_id" in names or sum(1 for c in GENERIC_REQUIRED if c in names) >= 4


def _status_key(value: str) -> str:
    return value.strip().lower().replace("-", "_").replace(" ", "_")


def status_label(value: str) -> str:
    """The generic status of an export's status text, '' when it is not one."""
    candidate = _status_key(value)
    return candidate if candidate in GENERIC_STATUSES else ""


def direction_label(value: str) -> str:
    """The generic direction of an export's direction text, '' when it is not one."""
    candidate = value.strip().lower()
    return candidate if candidate in GENERIC_DIRECTIONS else ""


def resolve_site(text: str, sites: dict[str, SiteInfo], file_site: SiteInfo) -> SiteInfo | None:
    """The site a leg's `site` text names (empty: the file's site); None when unknown."""
    key = text.strip().lower()
    return sites.get(key) if key else file_site


def read_generic(
    first: Record, records: Iterator[Record], text: CsvText, ctx: TelephonyContext
) -> ParsedFile:
    """The project's documented CSV (header required), one row per leg."""
    header_fields = first[2]
    assert header_fields is not None
    header = normalize_header(header_fields)
    positions, extras = header_index(header, LEG_EXPORT_COLUMNS)
    for column in GENERIC_REQUIRED:
        if column not in positions:
            raise FileRefused(f"missing required column {column!r} (generic telephony format)")
    if extras:
        log.warning("%s: ignoring extra columns: %s", ctx.rel_path, ", ".join(extras))

    take = [positions.get(column, -1) for column in LEG_EXPORT_COLUMNS]
    max_bytes = ctx.max_field_bytes
    max_seconds = ctx.max_call_seconds
    max_hours = ctx.config.vars["max_call_hours"]
    phones = ctx.phones
    parse_ts = ctx.timestamps
    sites = ctx.sites
    file_site = ctx.file_site
    statuses: dict[str, str | None] = {}
    collector = RowCollector(text)

    for line, last, fields, error in records:
        values = collector.take_fields(line, last, fields, error, header, take, max_bytes)
        if values is None:
            continue
        (
            call_id,
            _parent,
            direction,
            started_at,
            answered_at,
            ended_at,
            from_number,
            to_number,
            status,
            _queue,
            _ivr,
            _agent,
            _disposition,
            site_text,
            talk_text,
        ) = values
        try:
            key = call_id.strip()
            if not key:
                raise RowReject("missing call_id")
            status_norm = statuses.get(status)
            if status_norm is None:
                status_norm = statuses[status] = status_label(status)
            if not status_norm:
                raise RowReject(f"unknown status {status!r}")
            direction_norm = direction_label(direction)
            if not direction_norm:
                raise RowReject(f"unknown direction {direction!r}")
            site = resolve_site(site_text, sites, file_site)
            if site is None:
                raise RowReject(f"unknown site {site_text!r}")
            zone = site.zone
            started = parse_ts(started_at, zone, "started_at")
            ended = parse_ts(ended_at, zone, "ended_at")
            answered = parse_ts(answered_at, zone, "answered_at")
            if started is None:
                raise RowReject("missing started_at")
            if ended is None:
                raise RowReject("missing ended_at")
            talk = _talk_seconds(started, answered, ended, talk_text, max_seconds, max_hours)
        except RowReject as reject:
            collector.reject(line, last, str(reject))
            continue
        region = site.region
        collector.add(
            key,
            fields,
            line,
            last,
            values
            + (site.name, status_norm, direction_norm, started, answered, ended, talk)
            + phones(from_number, region)
            + phones(to_number, region),
        )

    parsed = ParsedFile(
        table=TELEPHONY_TABLE,
        format="generic",
        rows=[],
        row_columns=[*LEG_EXPORT_COLUMNS, *(name for name, _ in LEG_ROW_NORMALIZED)],
        lines=[],
        constants={"source_format": "generic", "source_system": ctx.source_system("generic")},
    )
    return collector.finish(parsed)


def _talk_seconds(
    started: datetime,
    answered: datetime | None,
    ended: datetime,
    talk_text: str,
    max_seconds: float,
    max_hours: object,
) -> float | None:
    """Validate the leg's clock and return talk seconds (given, else ended - answered)."""
    if ended < started:
        raise RowReject("ended_at before started_at")
    if answered is not None and not started <= answered <= ended:
        raise RowReject("answered_at outside [started_at, ended_at]")
    if (ended - started).total_seconds() > max_seconds:
        raise RowReject(f"duration over max_call_hours ({max_hours})")
    talk_value = talk_text.strip()
    if talk_value:
        try:
            talk = float(talk_value)
        except ValueError:
            raise RowReject(f"unparseable talk_seconds: {talk_text!r}") from None
        if not math.isfinite(talk):
            raise RowReject(f"unparseable talk_seconds: {talk_text!r}")
        if talk < 0:
            raise RowReject(f"negative talk_seconds: {talk_text!r}")
        if talk > max_seconds:
            raise RowReject(f"talk_seconds over max_call_hours ({max_hours})")
        return talk
    if answered is not None:
        return (ended - answered).total_seconds()
    return None


TELEPHONY_FORMATS: dict[str, TelephonyFormat] = {
    "generic": TelephonyFormat("generic", _detect_generic, read_generic),
}


def check_layout(format_name: str | None, source: dict[str, str] | None) -> TelephonyFormat:
    """The registered format for a file, or FileRefused naming the setting to change."""
    if format_name is None:
        raise FileRefused(UNRECOGNIZED_LAYOUT)
    fmt = TELEPHONY_FORMATS.get(format_name)
    if fmt is None:
        pattern = (source or {}).get("pattern", "")
        raise FileRefused(
            f"telephony format {format_name!r} (telephony_sources pattern {pattern!r}) "
            f"is not supported by this version; supported: {', '.join(TELEPHONY_FORMATS)}"
        )
    return fmt
