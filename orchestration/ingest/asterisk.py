"""Asterisk CDR exports: `cdr_csv` Master.csv (16 to 21 columns, no header) and `cdr_custom`.

Spec: inputs-and-outputs.md ("Telephony formats", asterisk_cdr, and the status table);
docs/formats.md. Every row maps onto the generic columns of `raw.telephony_legs`:

- `call_id`: `<uniqueid>#<sequence>`, else `<uniqueid>#<hash of dstchannel and start>`; without
  a uniqueid `cdr-<hash of start, src, dst, channel, dstchannel>` (ids stay text).
- `parent_call_id`: `linkedid`, else `uniqueid`, else (16 columns) the caller's `channel`.
- `direction`: the raw `dcontext`; `direction_normalized` inbound/outbound from the
  telephony_sources row's `inbound_contexts`/`outbound_contexts`, neither -> internal.
- `status`: the raw `disposition`; `status_normalized` by the spec's table (VoiceMail
  `lastapp` first; ANSWERED with/without `dstchannel`; NO ANSWER, BUSY, FAILED/CONGESTION).
- `from_number`/`to_number`: `src` (else the number of `clid`'s `<...>`) / `dst`.
- `queue`, `ivr_selection`, `disposition`, `site`: `userfield` `key=value;...` pairs.
- `agent_id`: `dstchannel`; `talk_seconds`: `billsec` (answered legs).
- times: `start`/`answer`/`end` in the site's time zone, or UTC where the site's
  `telephony_clock` is `utc`.

Lines are read one physical line at a time (a CDR never spans lines), with the csv module
first and, when that gives the wrong field count, a tolerant splitter for malformed `clid`
quoting (`""Name, X" <1115>"`). Per file the median of (start read as configured, in UTC)
minus the `uniqueid` epoch goes to `raw.asterisk_clock_checks` for the timezone_offset gate;
it is never applied to the data.
"""

from __future__ import annotations

import csv
import hashlib
import re
import statistics
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

from orchestration.ingest.csvtext import CsvText, Record
from orchestration.ingest.normalize import RowReject
from orchestration.ingest.rows import FileRefused, ParsedFile, RowCollector, oversize_field
from orchestration.ingest.schema import LEG_EXPORT_COLUMNS, LEG_ROW_NORMALIZED
from orchestration.ingest.telephony import (
    TELEPHONY_FORMATS,
    TELEPHONY_TABLE,
    TelephonyContext,
    TelephonyFormat,
    _talk_seconds,
)

FORMAT = "asterisk_cdr"
CLOCK_TABLE = "asterisk_clock_checks"

BASE_COLUMNS: tuple[str, ...] = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
)
NEW_COLUMNS: tuple[str, ...] = ("peeraccount", "linkedid", "sequence")  # newcdrcolumns
KNOWN_COLUMNS = frozenset(BASE_COLUMNS + ("uniqueid", "userfield") + NEW_COLUMNS)
REQUIRED_COLUMNS: tuple[str, ...] = ("start", "end", "disposition")

# cdr_csv layouts by column count: loguniqueid, loguserfield, newcdrcolumns in that order.
LAYOUTS: dict[int, list[tuple[str, ...]]] = {
    16: [BASE_COLUMNS],
    17: [BASE_COLUMNS + ("uniqueid",), BASE_COLUMNS + ("userfield",)],
    18: [BASE_COLUMNS + ("uniqueid", "userfield")],
    19: [BASE_COLUMNS + NEW_COLUMNS],
    20: [BASE_COLUMNS + ("uniqueid",) + NEW_COLUMNS, BASE_COLUMNS + ("userfield",) + NEW_COLUMNS],
    21: [BASE_COLUMNS + ("uniqueid", "userfield") + NEW_COLUMNS],
}

DISPOSITIONS: dict[str, str] = {
    "ANSWERED": "answered",
    "NO ANSWER": "no_answer",
    "BUSY": "busy",
    "FAILED": "failed",
    "CONGESTION": "failed",
}
USERFIELD_KEYS = ("ivr", "queue", "disposition", "site")

UNIQUEID = re.compile(r"^(?:.*-)?(\d{9,11})\.(\d+)$")  # `<epoch>.<n>`, optional `system-` prefix
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")
_CLID_NUMBER = re.compile(r"<([^<>]*)>\s*\"?\s*$")
# A field: a quoted value closed by a quote just before a comma or the line end (so a stray
# inner quote, as in malformed clid quoting, does not end it), else an unquoted value.
_TOLERANT_FIELD = re.compile(r'"(.*?)"(?=,|$)|([^,]*)')
_ZERO_TIMES = ("0000-00-00 00:00:00",)


def looks_like_uniqueid(value: str) -> bool:
    return UNIQUEID.match(value.strip()) is not None


def uniqueid_epoch(value: str) -> int | None:
    match = UNIQUEID.match(value.strip())
    return int(match.group(1)) if match else None


def _detect(header: list[str]) -> bool:
    """A header-less cdr_csv record: 16-21 fields, a start time and a known disposition."""
    if not 16 <= len(header) <= 21:
        return False
    return bool(_DATETIME.match(header[9].strip())) and header[14].strip().upper() in DISPOSITIONS


def split_line(line: str) -> list[str]:
    """Fields of one physical line with the csv module (tolerant of odd quoting)."""
    try:
        return next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return split_tolerant(line)


def split_tolerant(line: str) -> list[str]:
    """Fields of a line whose quoting the csv module misreads (malformed `clid` quoting)."""
    fields: list[str] = []
    pos, length = 0, len(line)
    while True:
        match = _TOLERANT_FIELD.match(line, pos)
        assert match is not None  # the pattern matches the empty string
        quoted, plain = match.group(1), match.group(2)
        fields.append(quoted.replace('""', '"') if quoted is not None else plain)
        pos = match.end()
        if pos >= length or line[pos] != ",":
            return fields
        pos += 1


def parse_userfield(text: str) -> dict[str, str]:
    """`key=value` pairs separated by `;` (keys lower-cased); other text is ignored."""
    pairs: dict[str, str] = {}
    if "=" not in text:
        return pairs
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            pairs[key.strip().lower()] = value.strip()
    return pairs


def _clid_number(clid: str) -> str:
    match = _CLID_NUMBER.search(clid)
    return match.group(1).strip() if match else ""


def _short_hash(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _contexts(source: dict[str, str] | None, setting: str) -> frozenset[str]:
    return frozenset(c.lower() for c in ((source or {}).get(setting) or "").split() if c)


# -- layout -------------------------------------------------------------------------------


def _configured_columns(ctx: TelephonyContext) -> tuple[str, ...] | None:
    text = ((ctx.source or {}).get("columns") or "").strip()
    if not text:
        return None
    pattern = (ctx.source or {}).get("pattern", "")
    names = tuple(name.strip().lower() for name in text.replace(",", " ").split())
    unknown = [n for n in names if n not in KNOWN_COLUMNS]
    if unknown:
        raise FileRefused(
            f"telephony_sources columns (pattern {pattern!r}): unknown cdr column {unknown[0]!r}; "
            f"known: {', '.join(sorted(KNOWN_COLUMNS))}"
        )
    repeated = [n for n, k in Counter(names).items() if k > 1]
    if repeated:
        raise FileRefused(
            f"telephony_sources columns (pattern {pattern!r}): column {repeated[0]!r} repeated"
        )
    for name in REQUIRED_COLUMNS:
        if name not in names:
            raise FileRefused(
                f"telephony_sources columns (pattern {pattern!r}): missing required column {name!r}"
            )
    return names


def _choose_layout(
    width: int, parsed: list[tuple[int, str, list[str]]], ctx: TelephonyContext
) -> tuple[str, ...]:
    """The cdr_csv layout of a file by its column count and, for 17 and 20, content."""
    candidates = LAYOUTS.get(width)
    pattern = (ctx.source or {}).get("pattern", "")
    setting = (
        f"set format asterisk_cdr and the columns of the file in telephony_sources "
        f"(pattern {pattern!r})"
        if pattern
        else "add a telephony_sources row for the file with format asterisk_cdr and its columns"
    )
    if candidates is None:
        raise FileRefused(
            f"unrecognized Asterisk cdr_csv layout: {width} columns (cdr_csv writes 16 to 21); "
            f"{setting}"
        )
    if len(candidates) == 1:
        return candidates[0]
    # 17 / 20: column 17 is uniqueid (`<epoch>.<n>`, never empty) or userfield
    values = [fields[16].strip() for _, _, fields in parsed if len(fields) == width]
    uniqueids = sum(1 for v in values if looks_like_uniqueid(v))
    if values and uniqueids == len(values):
        return candidates[0]
    if uniqueids == 0:
        return candidates[1]
    raise FileRefused(
        f"ambiguous Asterisk cdr_csv layout: {width} columns, column 17 is uniqueid in "
        f"{uniqueids} rows and not in {len(values) - uniqueids}, so it may be uniqueid or "
        f"userfield; {setting}"
    )


# -- reader -------------------------------------------------------------------------------


def read_asterisk_cdr(
    first: Record, records: Iterator[Record], text: CsvText, ctx: TelephonyContext
) -> ParsedFile:
    configured = _configured_columns(ctx)
    parsed: list[tuple[int, str, list[str]]] = []  # (line number, raw line, fields)
    for number, raw in enumerate(text.lines, start=1):
        line = raw.rstrip("\r\n")
        if not line:
            continue
        parsed.append((number, line, split_line(line)))
    if configured is not None:
        columns = configured
        if parsed and [f.strip().lower() for f in parsed[0][2]] == list(columns):
            parsed = parsed[1:]  # a header line naming the mapped columns is not a record
    else:
        counts = Counter(len(fields) for _, _, fields in parsed)
        in_range = [(k, w) for w, k in counts.items() if 16 <= w <= 21]
        width = max(in_range)[1] if in_range else counts.most_common(1)[0][0]
        columns = _choose_layout(width, parsed, ctx)
    return _read_rows(columns, parsed, text, ctx)


def _read_rows(
    columns: tuple[str, ...],
    parsed: list[tuple[int, str, list[str]]],
    text: CsvText,
    ctx: TelephonyContext,
) -> ParsedFile:
    width = len(columns)
    at = {name: i for i, name in enumerate(columns)}

    def getter(name: str):
        index = at.get(name)
        return (lambda f: f[index]) if index is not None else (lambda f: "")

    g = {name: getter(name) for name in KNOWN_COLUMNS}
    has_uniqueid = "uniqueid" in at
    inbound = _contexts(ctx.source, "inbound_contexts")
    outbound = _contexts(ctx.source, "outbound_contexts")
    max_bytes, max_seconds = ctx.max_field_bytes, ctx.max_call_seconds
    max_hours = ctx.config.vars["max_call_hours"]
    phones, parse_ts, sites, file_site = ctx.phones, ctx.timestamps, ctx.sites, ctx.file_site
    collector = RowCollector(text)
    offsets: dict[str, list[float]] = {}  # site -> start (UTC) - uniqueid epoch, seconds

    for line, raw, fields in parsed:
        collector.rows_read += 1
        if len(fields) != width:
            repaired = split_tolerant(raw)
            if len(repaired) != width:
                collector.reject(
                    line, line, f"wrong field count: expected {width} fields, got {len(fields)}"
                )
                continue
            fields = repaired
        too_big = oversize_field(fields, max_bytes, list(columns))
        if too_big:
            collector.reject(line, line, too_big)
            continue
        try:
            row, key, site, epoch = _map_row(
                fields, g, has_uniqueid, inbound, outbound, sites, file_site, parse_ts,
                max_seconds, max_hours,
            )  # fmt: skip
        except RowReject as reject:
            collector.reject(line, line, str(reject))
            continue
        if epoch is not None:
            started = row[len(LEG_EXPORT_COLUMNS) + 3]
            delta = started - datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)
            offsets.setdefault(site.name, []).append(delta.total_seconds())
        region = site.region
        from_number, to_number = row[6], row[7]
        collector.add(
            key, fields, line, line, row + phones(from_number, region) + phones(to_number, region)
        )

    source_system = ctx.source_system(FORMAT)
    result = ParsedFile(
        table=TELEPHONY_TABLE,
        format=FORMAT,
        rows=[],
        row_columns=[*LEG_EXPORT_COLUMNS, *(name for name, _ in LEG_ROW_NORMALIZED)],
        lines=[],
        constants={"source_format": FORMAT, "source_system": source_system},
    )
    result = collector.finish(result)
    clock_rows = []
    for site_name, values in sorted(offsets.items()):
        info = sites[site_name.lower()]
        clock_rows.append(
            (
                source_system,
                site_name,
                "utc" if info.zone is None else "local",
                len(values),
                float(statistics.median(values)),
            )
        )
    result.side_rows[CLOCK_TABLE] = (
        ["source_system", "site", "telephony_clock", "legs_compared", "median_offset_seconds"],
        clock_rows,
    )
    return result


def _map_row(fields, g, has_uniqueid, inbound, outbound, sites, file_site, parse_ts,
             max_seconds, max_hours):  # fmt: skip
    src, dst, dcontext = g["src"](fields), g["dst"](fields), g["dcontext"](fields)
    clid, channel, dstchannel = g["clid"](fields), g["channel"](fields), g["dstchannel"](fields)
    lastapp, start, answer, end = (
        g["lastapp"](fields), g["start"](fields), g["answer"](fields), g["end"](fields)
    )  # fmt: skip
    billsec, disposition = g["billsec"](fields), g["disposition"](fields)
    uniqueid, userfield = g["uniqueid"](fields).strip(), g["userfield"](fields)
    linkedid, sequence = g["linkedid"](fields).strip(), g["sequence"](fields).strip()

    # leg key and call grouping
    if uniqueid:
        suffix = sequence if sequence else _short_hash(dstchannel, start)
        key = f"{uniqueid}#{suffix}"
    else:
        key = "cdr-" + _short_hash(start, src, dst, channel, dstchannel)
    parent = linkedid or uniqueid or channel.strip()

    # status (first matching row of the spec's table)
    code = " ".join(disposition.strip().upper().split())
    if lastapp.strip().lower() == "voicemail":
        status = "voicemail"
    elif code == "ANSWERED":
        status = "answered" if dstchannel.strip() else "abandoned"
    else:
        status = DISPOSITIONS.get(code, "")
        if not status:
            raise RowReject(f"unknown disposition {disposition!r}")

    context = dcontext.strip().lower()
    direction = (
        "inbound" if context in inbound else "outbound" if context in outbound else "internal"
    )

    pairs = parse_userfield(userfield)
    site_text = pairs.get("site", "")
    if site_text:
        site = sites.get(site_text.lower())
        if site is None:
            raise RowReject(f"unknown site {site_text!r} in userfield")
    else:
        site = file_site
    zone = site.zone
    started = parse_ts(start, zone, "start")
    ended = parse_ts(end, zone, "end")
    answered = None if answer.strip() in _ZERO_TIMES else parse_ts(answer, zone, "answer")
    if started is None:
        raise RowReject("missing start")
    if ended is None:
        raise RowReject("missing end")
    talk = _talk_seconds(started, answered, ended, billsec, max_seconds, max_hours)
    if status != "answered":
        talk = None
    epoch = uniqueid_epoch(uniqueid) if has_uniqueid and uniqueid else None

    from_number = src.strip() or _clid_number(clid)
    row = (
        key,
        parent,
        dcontext,
        start,
        answer,
        end,
        from_number,
        dst,
        disposition,
        pairs.get("queue", ""),
        pairs.get("ivr", ""),
        dstchannel,
        pairs.get("disposition", ""),
        site_text,
        billsec,
        site.name,
        status,
        direction,
        started,
        answered,
        ended,
        talk,
    )
    return row, key, site, epoch


TELEPHONY_FORMATS[FORMAT] = TelephonyFormat(FORMAT, _detect, read_asterisk_cdr)
