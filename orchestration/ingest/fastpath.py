"""Columnar reading of clean CSV exports in DuckDB (issue 7: the row readers are pure Python).

Before the files are processed, `ColumnarPlan` reads the header of each new file and keeps
those with a layout the row reader takes without a warning (generic telephony CSV, or a CRM /
marketing export with no Salesforce/HubSpot value to convert). Files of one layout are read
together, in chunks of about `CHUNK_ROWS` records (estimated from the file sizes), when the
first of them comes up in the ingest's file order. Each file's bytes are then read once:
hashed (the digest the ingest's ledger records, `_HashCache.read`), checked to be bytes DuckDB
splits exactly as the row reader (`csvtext.CsvText`, Python's `csv`) does (`clean_body`), and
handed to one `read_csv` over the chunk; every rule of the row reader is then evaluated on
whole columns, file by file.

The path never decides anything on its own: a file with any row the row reader would reject
or treat specially (a bad value, a timestamp or number written any other way than the plain
ISO / decimal forms below, a local time in an hour with a DST gap or an offset change, a
duplicate or padded id, a field over max_field_bytes), or whose bytes changed since they
were planned, is handed back to the row reader, which writes the reject rows with their
reasons. So the rows loaded are identical either way; `tests/test_fastpath.py` compares both
paths table by table. The ledger, duplicates and supersession stay in `loader.py`, file by
file, in order.

What still runs in Python is per distinct value, not per row: status, direction and site
labels through the row reader's own functions, phone numbers through `phonemap.py` (the
shared `PhoneNormalizer` for distinct keys), and the UTC offset of each local wall-clock
hour through the shared `TimestampParser`. The clock rules (end before start, answered
outside the leg, `max_call_hours`) are the row reader's, restated here as SQL; the
comparison test holds the two to each other.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd

from orchestration.ingest.crm import ENTITIES, EntitySpec, value_fixer
from orchestration.ingest.csvtext import normalize_header
from orchestration.ingest.normalize import UTF8_BOM
from orchestration.ingest.phonemap import build_phone_map, load_seen_keys, save_seen_keys
from orchestration.ingest.rows import FileRefused, ParsedFile, header_index, uncompress
from orchestration.ingest.schema import (
    LEG_EXPORT_COLUMNS,
    LEG_ROW_NORMALIZED,
    PHONE_COLUMNS,
    PHONE_SUFFIXES,
)
from orchestration.ingest.telephony import (
    GENERIC_REQUIRED,
    TELEPHONY_FORMATS,
    TELEPHONY_TABLE,
    detect_format,
    direction_label,
    match_source,
    resolve_site,
    status_label,
)

log = logging.getLogger(__name__)

PREFIX = "_ringledger_fast_"
CHUNK_ROWS = 1_000_000  # records read at once (memory: DuckDB holds a chunk's columns)
SAMPLE_BYTES = 65_536  # read by the plan: the header, and the bytes a record to size chunks
GENERIC = "generic"

# The plain ISO 8601 forms read here (anything else goes to the row reader, which accepts
# what `datetime.fromisoformat` accepts): date, `T` or space, hh:mm:ss, up to 6 fraction
# digits, then nothing (local time), `Z` or `+hh:mm` / `-hh:mm`; or a bare date (00:00 local).
TIMESTAMP_PATTERN = (
    r"^(\d{4}-\d{2}-\d{2})(?:[T ]((?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?)"
    r"(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?)?$"
)
YEARS = ("1900", "3000")  # outside: the row reader decides (range and overflow errors)
# Durations: plain decimals (the row reader's float() accepts more, e.g. `1e3`, `1_000`).
DECIMAL_PATTERN = r"^\d{1,15}(\.\d{1,15})?$"
# An id the row reader's str.strip() leaves unchanged: printable ASCII at both ends.
STRIPPED_PATTERN = r"^[!-~](.*[!-~])?$"
TELEPHONY_STAMPS = ("started_at", "answered_at", "ended_at")


def literal(value: str | None) -> str:
    if value is None:
        return "NULL::VARCHAR"
    return "'" + value.replace("'", "''") + "'"


def clean_body(payload: bytes) -> bytes | None:
    """The export with `\\n` line ends when DuckDB splits it exactly as the row reader does
    (UTF-8 without a BOM, no `"` so no quoting, no NUL, no lone carriage return, no blank
    line), else None."""
    if payload.startswith(UTF8_BOM) or b'"' in payload or b"\x00" in payload:
        return None
    body = payload
    if b"\r" in payload:  # (a memchr: most exports have none, and counting costs a pass)
        if payload.count(b"\r") != payload.count(b"\r\n"):
            return None
        body = payload.replace(b"\r\n", b"\n")
    if body.startswith(b"\n") or b"\n\n" in body:
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return body


def _sample(path, rel: str) -> tuple[bytes, int] | None:
    """(the first SAMPLE_BYTES of the file's text, its text size in bytes: exact for a plain
    file, from the gzip trailer for a .gz), None when unreadable. Only the plan reads it: the
    whole file is read once, when its chunk is built."""
    try:
        if rel.lower().endswith(".gz"):
            with open(path, "rb") as raw:
                raw.seek(-4, 2)
                size = int.from_bytes(raw.read(4), "little")  # uncompressed size mod 2**32
            with gzip.open(path, "rb") as text:
                return text.read(SAMPLE_BYTES), size
        with open(path, "rb") as handle:
            return handle.read(SAMPLE_BYTES), os.fstat(handle.fileno()).st_size
    except (OSError, EOFError, zlib.error):
        return None  # the row reader refuses it with the reason


# -- plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    kind: str  # GENERIC or a CRM entity name
    width: int  # header fields
    take: tuple[int, ...]  # header position of each export column (-1: missing)


@dataclass
class Member:
    fidx: int  # position in the ingest's file order
    rel: str
    path: Any
    rows: int  # records after the header: estimated by the plan, counted when read
    header: bytes = b""  # the header line the layout was planned on
    digest: str | None = None  # sha256 of the bytes read when the chunk was built
    file_site: str = ""  # telephony: lower-cased site of the file (telephony_sources)
    constants: dict[str, str] = field(default_factory=dict)


@dataclass
class Chunk:
    layout: Layout
    members: list[Member]
    number: int
    built: bool = False
    clean: set[int] = field(default_factory=set)  # fidx of files read here
    out: str = ""

    @property
    def rows(self) -> int:
        return sum(m.rows for m in self.members)


class ColumnarPlan:
    """The clean files of one ingest, read in chunks when their turn comes (see module)."""

    def __init__(self, run, candidates) -> None:
        self.run = run
        self.con: duckdb.DuckDBPyConnection = run.con
        self.chunks: list[Chunk] = []
        self.by_rel: dict[str, tuple[Chunk, Member]] = {}
        self.files_read = 0
        self._done: list[Chunk] = []
        self._taken: dict[str, tuple[Chunk, Member]] = {}  # files handed to the ingest
        # rows to write at the next flush: chunk number -> (chunk, [(member, load id, seq)])
        self._deferred: dict[int, tuple[Chunk, list[tuple[Member, str, int]]]] = {}
        # phone keys mapped by earlier ingests and the chunks read so far (phonemap)
        self.seen_keys = load_seen_keys(self.con, f"{PREFIX}seen_keys")
        groups: dict[Layout, list[Member]] = {}
        for fidx, cand in enumerate(candidates):
            planned = self._plan(fidx, cand)
            if planned is not None:
                groups.setdefault(planned[0], []).append(planned[1])
        for layout, members in groups.items():
            current: list[Member] = []
            for member in members:
                if current and sum(m.rows for m in current) + member.rows > CHUNK_ROWS:
                    self._add_chunk(layout, current)
                    current = []
                current.append(member)
            if current:
                self._add_chunk(layout, current)
        # chunks are built when their first file comes up in the ingest's order
        self._build_order = sorted(self.chunks, key=lambda c: c.members[0].fidx)
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ringledger-read")
        self._reading: dict[int, Future[ChunkBytes]] = {}

    def _add_chunk(self, layout: Layout, members: list[Member]) -> None:
        chunk = Chunk(layout, members, len(self.chunks))
        self.chunks.append(chunk)
        for member in members:
            self.by_rel[member.rel] = (chunk, member)

    def chunk_of(self, rel: str) -> int | None:
        """The chunk a file not processed yet belongs to, None when it is not planned."""
        entry = self.by_rel.get(rel)
        return entry[0].number if entry else None

    @property
    def planned(self) -> set[str]:
        return set(self.by_rel)

    def _plan(self, fidx: int, cand) -> tuple[Layout, Member] | None:
        run = self.run
        name = cand.path.name.lower()
        if cand.refusal or not name.endswith((".csv", ".csv.gz")):
            return None
        read = _sample(cand.path, cand.rel)
        if read is None:
            return None
        sample, size = read
        first, newline, rest = sample.partition(b"\n")
        if not newline or sample.startswith(UTF8_BOM):
            return None  # no header line in the sample, or not clean: the row reader
        try:
            fields = first.removesuffix(b"\r").decode("utf-8").split(",")
        except UnicodeDecodeError:
            return None
        header = normalize_header(fields)
        # records estimated from the sample's bytes a record (chunk sizes only: the records
        # are counted when the chunk is read)
        records = rest.count(b"\n")
        per_record = len(rest) / records if records else max(len(first), 1)
        estimate = max(0, round((size - len(first) - 1) / per_record))
        member = Member(fidx, cand.rel, cand.path, estimate, first.removesuffix(b"\r"))
        if cand.spec is not None:
            spec: EntitySpec = cand.spec
            positions, extras = header_index(header, spec.columns, spec.aliases)
            if extras or any(c not in positions for c in spec.required):
                return None  # the row reader warns or refuses
            if value_fixer(spec, header, positions) is not None:
                return None  # Salesforce / HubSpot values: the row reader converts them
            take = tuple(positions.get(c, -1) for c in spec.columns)
            return Layout(spec.entity, len(fields), take), member
        source_path = cand.rel.split("/", 1)[1]
        sources = run.config.seeds.get("telephony_sources", [])
        source = match_source(source_path, sources)
        if (
            detect_format(fields, source_path, sources) != GENERIC
            or GENERIC not in TELEPHONY_FORMATS
        ):
            return None
        site_name = ((source or {}).get("site") or "").strip().lower()
        if site_name and site_name not in run.sites:
            return None  # the row reader refuses the file
        positions, extras = header_index(header, LEG_EXPORT_COLUMNS)
        if extras or any(c not in positions for c in GENERIC_REQUIRED):
            return None
        system = ((source or {}).get("source_system") or "").strip() or GENERIC
        member.file_site = site_name or run.config.default_site.strip().lower()
        member.constants = {"source_format": GENERIC, "source_system": system}
        take = tuple(positions.get(c, -1) for c in LEG_EXPORT_COLUMNS)
        return Layout(GENERIC, len(fields), take), member

    # .. reading ...........................................................................
    def take(self, rel: str) -> tuple[str, ParsedFile | None] | None:
        """(sha256 of the file's bytes, its rows) when its chunk read it: the rows are None
        when the bytes are not clean (the row reader reads them). None when the file is not
        planned, or was unreadable when its chunk was built (the ingest reads it itself)."""
        self._drop_done()
        entry = self.by_rel.pop(rel, None)
        if entry is None:
            return None
        chunk, member = entry
        if not chunk.built:
            # outside any transaction: a file DuckDB cannot split raises an error, which
            # would abort the ingest's open transaction
            self.run.commit()
            self._build(chunk)
        if not any(self.by_rel.get(m.rel, (None,))[0] is chunk for m in chunk.members):
            self._done.append(chunk)  # dropped after this file's rows are written
        if member.digest is None:
            return None
        if member.fidx not in chunk.clean:
            return member.digest, None
        self.files_read += 1
        self._taken[rel] = (chunk, member)
        if chunk.layout.kind == GENERIC:
            table, fmt = TELEPHONY_TABLE, GENERIC
            columns = [*LEG_EXPORT_COLUMNS, *(name for name, _ in LEG_ROW_NORMALIZED)]
        else:
            spec = ENTITIES[chunk.layout.kind]
            table, fmt, columns = spec.table, "csv", spec.row_columns
        return member.digest, ParsedFile(
            table=table,
            format=fmt,
            rows=[],
            row_columns=columns,
            lines=[],
            constants=dict(member.constants),
            rows_read=member.rows,
            relation=f"(SELECT * EXCLUDE (_fidx) FROM {chunk.out} WHERE _fidx = {member.fidx})",
            relation_rows=member.rows,
        )

    def defer(self, rel: str, load_id: str, seq: int) -> None:
        """Write this file's rows at the next `flush` (one INSERT per chunk instead of one per
        file); the ingest flushes before every commit, in the same transaction."""
        chunk, member = self._taken[rel]
        self._deferred.setdefault(chunk.number, (chunk, []))[1].append((member, load_id, seq))

    def flush(self) -> None:
        """Write the deferred rows: each chunk's files at once, with their load metadata."""
        for chunk, files in self._deferred.values():
            table = (
                TELEPHONY_TABLE
                if chunk.layout.kind == GENERIC
                else ENTITIES[chunk.layout.kind].table
            )
            data: dict[str, Any] = {
                "fidx": pd.Series([m.fidx for m, _, _ in files], dtype="int32"),
                "_file": pd.Series([m.rel for m, _, _ in files], dtype=object),
                "_load_id": pd.Series([load_id for _, load_id, _ in files], dtype=object),
                "_load_seq": pd.Series([seq for _, _, seq in files], dtype="int64"),
            }
            for name in files[0][0].constants:
                data[name] = pd.Series([m.constants[name] for m, _, _ in files], dtype=object)
            relation = f"{PREFIX}deferred"
            self.con.register(relation, pd.DataFrame(data))
            try:
                self.con.execute(
                    f"INSERT INTO raw.{table} BY NAME SELECT o.* EXCLUDE (_fidx, _bad), "
                    f"m.* EXCLUDE (fidx) FROM {chunk.out} AS o "
                    f"JOIN {relation} AS m ON m.fidx = o._fidx"
                )
            finally:
                self.con.unregister(relation)
        self._deferred.clear()

    def save_phone_keys(self) -> int:
        """Store the phone keys this ingest mapped for the next ones (phonemap.save_seen_keys);
        outside the files' transactions (call after the last commit)."""
        return save_seen_keys(self.con, self.seen_keys)

    def discard(self) -> None:
        """Forget the deferred rows (their transaction was rolled back)."""
        self._deferred.clear()

    def close(self) -> None:
        self._reader.shutdown(wait=True, cancel_futures=True)
        self._done.extend(c for c in self.chunks if c.built)
        self._drop_done()
        self.con.execute(f"DROP TABLE IF EXISTS {self.seen_keys}")

    def _drop_done(self) -> None:
        for chunk in self._done:
            if chunk.out:
                self.con.execute(f"DROP TABLE IF EXISTS {chunk.out}")
        self._done = []

    def _build(self, chunk: Chunk) -> None:
        chunk.built = True
        chunk.out = f"{PREFIX}out_{chunk.number}"
        started = time.perf_counter()
        pending = self._reading.pop(chunk.number, None)
        read = pending.result() if pending else read_chunk(chunk, self.run.hashes)
        waited = time.perf_counter() - started
        following = [c for c in self._build_order if not c.built][:1]
        for later in following:  # its bytes are read while DuckDB works on this chunk
            self._reading[later.number] = self._reader.submit(read_chunk, later, self.run.hashes)
        reader = ChunkReader(self.con, self.run, chunk, self.seen_keys)
        try:
            chunk.clean = reader.read(read)
        finally:
            reader.cleanup()
        del read
        log.info(
            "columnar: %s of %s %s files clean (%s records) in %.1f s (%.1f s reading bytes)",
            len(chunk.clean),
            len(chunk.members),
            chunk.layout.kind,
            chunk.rows,
            time.perf_counter() - started,
            waited,
        )


@dataclass
class ChunkBytes:
    """A chunk's files as read by `read_chunk`."""

    members: list[Member]  # the files with clean bytes, in file order
    bodies: list[bytes]  # the records of those with records, each line prefixed `fidx,`


def read_chunk(chunk: Chunk, hashes) -> ChunkBytes:
    """Read each file of `chunk` once: its sha256 (`hashes`, the ingest's `_HashCache`,
    remembers it with the file's stat) and record count are set on its member, whatever its
    bytes; the clean ones are returned, ready for one `read_csv`. Python only, no DuckDB: the
    plan runs it for the next chunk in a thread while DuckDB works on this one."""
    members: list[Member] = []
    bodies: list[bytes] = []
    for member in chunk.members:
        try:
            data, member.digest = hashes.read(member.path)
            body = clean_body(uncompress(member.rel, data))
        except (OSError, FileRefused):
            continue  # the ingest reads it again and refuses it with the reason
        if body is None:
            continue  # not clean: the row reader reads it
        header, newline, text = body.partition(b"\n")
        if header != member.header:
            continue  # rewritten since the plan read its header: the row reader
        if not newline or not text:
            member.rows = 0
            members.append(member)  # header only: no records
            continue
        if not text.endswith(b"\n"):
            text += b"\n"
        prefix = b"%d," % member.fidx
        lines = prefix + text[:-1].replace(b"\n", b"\n" + prefix) + b"\n"
        # one prefix a record: its records counted without another pass over the bytes
        member.rows = (len(lines) - len(text)) // len(prefix)
        bodies.append(lines)
        members.append(member)
    return ChunkBytes(members, bodies)


# -- one chunk ----------------------------------------------------------------------------


class ChunkReader:
    """Reads the files of a chunk into `chunk.out` and returns the clean ones."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, run, chunk: Chunk, seen_keys: str | None = None
    ):
        self.con = con
        self.seen_keys = seen_keys
        self.run = run
        self.chunk = chunk
        self.layout = chunk.layout
        self.max_bytes = int(run.config.vars["max_field_bytes"])
        self.max_seconds = float(run.config.vars["max_call_hours"]) * 3600.0
        self.src, self.stage = f"{PREFIX}src", f"{PREFIX}stage"
        self.firsts = f"{PREFIX}firsts"
        self.registered: list[str] = []
        self.tables = [self.src, self.firsts, self.stage, f"{PREFIX}phones"]

    def read(self, read: ChunkBytes) -> set[int]:
        members = self._load(read)
        if not members:
            return set()
        if self.layout.kind == GENERIC:
            spec = None
            columns, stamps, phones = (
                LEG_EXPORT_COLUMNS,
                TELEPHONY_STAMPS,
                PHONE_COLUMNS[TELEPHONY_TABLE],
            )
            ids: tuple[str, ...] = ("call_id",)
            self._stage_telephony(members)
        else:
            spec = ENTITIES[self.layout.kind]
            columns, stamps, phones, ids = (
                spec.columns,
                spec.timestamps,
                spec.phones,
                spec.id_columns,
            )
            zone = self.run.crm_zone
            self._stage(
                "",
                [
                    f"{literal(zone.key if zone else None)} AS _zone",
                    f"{literal(self.run.config.crm_default_region.strip().upper())} AS _region",
                ],
                stamps,
            )
        zones = self._zones()
        hours = self._hour_offsets(stamps, zones)
        lookup = ""
        if phones:
            pairs = " UNION ".join(
                f"SELECT {c} AS raw, _region AS region FROM {self.stage}" for c in phones
            )
            lookup = build_phone_map(
                self.con, pairs, self.run.phones, f"{PREFIX}phones", self.seen_keys
            )
        if spec is None:
            computed = ["s.site_resolved", "s.status_normalized", "s.direction_normalized"]
            bad = [
                "s.site_resolved IS NULL",
                "coalesce(s.status_normalized, '') = ''",
                "coalesce(s.direction_normalized, '') = ''",
                "s.started_at = ''",
                "s.ended_at = ''",
            ]
            post = [
                (
                    "CASE WHEN talk_seconds <> '' THEN TRY_CAST(talk_seconds AS DOUBLE) "
                    "WHEN answered_at_utc IS NOT NULL "
                    f"THEN {seconds_between('answered_at_utc', 'ended_at_utc')} END "
                    "AS talk_seconds_num"
                )
            ]
            rules = [
                "ended_at_utc < started_at_utc",
                (
                    "answered_at_utc IS NOT NULL AND NOT (answered_at_utc BETWEEN started_at_utc "
                    "AND ended_at_utc)"
                ),
                f"{seconds_between('started_at_utc', 'ended_at_utc')} > {self.max_seconds!r}",
                decimal_rule("talk_seconds", self.max_seconds),
            ]
        else:
            computed, bad, post = [], [], []
            rules = [decimal_rule(c, self.max_seconds) for c in spec.seconds]
            if spec.interval is not None:
                start, end = spec.interval
                rules.append(f"{end}_utc < {start}_utc")
        self._output(columns, computed, stamps, phones, (hours, lookup), bad, post)
        return self._verdict(members, columns, ids, rules)

    # .. load ..............................................................................
    def _load(self, read: ChunkBytes) -> list[Member]:
        """The records of `read` (see `read_chunk`) into SRC (`_fidx`, c0..), in file order,
        and each file's first row into FIRSTS; the members whose records DuckDB counts as
        read."""
        width = self.layout.width
        types = {"_fidx": "INTEGER", **{f"c{i}": "VARCHAR" for i in range(width)}}
        members, bodies = read.members, read.bodies
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {self.src} ("
            + ", ".join(f"{name} {typ}" for name, typ in types.items())
            + ")"
        )
        if bodies and not self._read_csv(b"".join(bodies), types):
            # a file DuckDB cannot split (a wrong field count, ...): read them one by one
            kept = []
            for member, body in zip([m for m in members if m.rows], bodies, strict=True):
                if self._read_csv(body, types):
                    kept.append(member)
            members = [m for m in members if not m.rows] + kept
        read.bodies = []  # in DuckDB now
        # each file's records are consecutive rows of SRC: a record's line is its row's
        # distance from its file's first row (+2: the header is line 1), see `_stage`
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {self.firsts} AS "
            f"SELECT _fidx, min(rowid) AS first_row FROM {self.src} GROUP BY _fidx"
        )
        return members

    def _read_csv(self, data: bytes, types: dict[str, str]) -> bool:
        source = f"{PREFIX}csv"
        try:
            relation = self.con.read_csv(
                io.BytesIO(data),
                header=False,
                auto_detect=False,
                columns=types,
                sep=",",
                quotechar="",
                escapechar="",
                strict_mode=True,
                null_padding=False,
            )
            self.con.register(source, relation)
            try:
                self.con.execute(f"INSERT INTO {self.src} SELECT * FROM {source}")
            finally:
                self.con.unregister(source)
        except duckdb.Error as exc:
            log.debug("columnar read declined (%s)", exc)
            return False
        return True

    # .. stage: labels joined, timestamps split ............................................
    def _columns_sql(self, columns: Sequence[str]) -> str:
        return ", ".join(
            f"coalesce(c{pos}, '') AS {name}" if pos >= 0 else f"'' AS {name}"
            for name, pos in zip(columns, self.layout.take, strict=True)
        )

    def _stage(self, joins: str, extra: Sequence[str], timestamps: Sequence[str]) -> None:
        """SRC's export columns plus `extra` (defining `_zone` and `_region`) and, per
        timestamp column X, `X__p` (its ISO parts) and `X__wall` (the wall-clock value)."""
        columns = (
            LEG_EXPORT_COLUMNS
            if self.layout.kind == GENERIC
            else ENTITIES[self.layout.kind].columns
        )
        oversize = " OR ".join(
            f"coalesce(strlen(c{i}), 0) > {self.max_bytes}" for i in range(self.layout.width)
        )
        rows = (
            "SELECT s._fidx, s.rowid - f.first_row + 2 AS _line, "
            f"({oversize}) AS _oversize, {self._columns_sql(columns)} "
            f"FROM {self.src} AS s JOIN {self.firsts} AS f ON f._fidx = s._fidx"
        )
        items = ["r.*", *extra]
        for col in timestamps:
            parts = f"regexp_extract(r.{col}, '{TIMESTAMP_PATTERN}', ['d', 't', 'z'])"
            items.append(f"{parts} AS {col}__p")
        walls = "".join(
            f", try_cast({c}__p.d || ' ' || if({c}__p.t = '', '00:00:00', {c}__p.t) "
            f"AS TIMESTAMP) AS {c}__wall"
            for c in timestamps
        )
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {self.stage} AS SELECT *{walls} FROM "
            f"(SELECT {', '.join(items)} FROM ({rows}) AS r {joins})"
        )
        self.con.execute(f"DROP TABLE {self.src}")

    def _register(self, name: str, frame: pd.DataFrame) -> str:
        relation = f"{PREFIX}{name}"
        self.con.register(relation, frame)
        self.registered.append(relation)
        return relation

    def _stage_telephony(self, members: list[Member]) -> None:
        run = self.run
        files = self._register(
            "files",
            pd.DataFrame(
                {
                    "fidx": pd.Series([m.fidx for m in members], dtype="int32"),
                    "file_site": pd.Series([m.file_site for m in members], dtype=object),
                }
            ),
        )

        def site_row(file_site: str, text: str) -> tuple:
            site = resolve_site(text, run.sites, run.sites[file_site])
            if site is None:
                return (None, None, None)
            return (site.name, site.zone.key if site.zone else None, site.region)

        pairs = self.con.execute(
            f"SELECT DISTINCT f.file_site, coalesce(s.c{self.layout.take[13]}, '') "
            f"FROM {self.src} AS s JOIN {files} AS f ON f.fidx = s._fidx"
            if self.layout.take[13] >= 0
            else f"SELECT DISTINCT file_site, '' FROM {files}"
        ).fetchall()
        sites = self._register(
            "sites",
            _labels(pairs, lambda pair: site_row(*pair), ("file_site", "raw"), 3),
        )
        status_pos, direction_pos = self.layout.take[8], self.layout.take[2]
        statuses = self._register(
            "statuses",
            _labels(self._distinct_src(status_pos), lambda v: (status_label(v[0]),), ("raw",), 1),
        )
        directions = self._register(
            "directions",
            _labels(
                self._distinct_src(direction_pos), lambda v: (direction_label(v[0]),), ("raw",), 1
            ),
        )
        self._stage(
            f"JOIN {files} AS f ON f.fidx = r._fidx "
            f"LEFT JOIN {sites} AS st ON CAST(st.file_site AS VARCHAR) = f.file_site "
            "AND CAST(st.raw AS VARCHAR) = r.site "
            f"LEFT JOIN {statuses} AS su ON CAST(su.raw AS VARCHAR) = r.status "
            f"LEFT JOIN {directions} AS di ON CAST(di.raw AS VARCHAR) = r.direction",
            [
                "CAST(st.v0 AS VARCHAR) AS site_resolved",
                "CAST(su.v0 AS VARCHAR) AS status_normalized",
                "CAST(di.v0 AS VARCHAR) AS direction_normalized",
                "CAST(st.v1 AS VARCHAR) AS _zone",
                "CAST(st.v2 AS VARCHAR) AS _region",
            ],
            TELEPHONY_STAMPS,
        )

    def _distinct_src(self, pos: int) -> list[tuple]:
        if pos < 0:
            return [("",)]
        return self.con.execute(f"SELECT DISTINCT coalesce(c{pos}, '') FROM {self.src}").fetchall()

    def _zones(self) -> dict[str, ZoneInfo]:
        zones = [site.zone for site in self.run.sites.values()] + [self.run.crm_zone]
        return {zone.key: zone for zone in zones if zone is not None}

    def _hour_offsets(self, timestamps: Sequence[str], zones: dict[str, ZoneInfo]) -> str:
        """`(zone, wall hour) -> offset seconds` of the local (suffix-less) values; NULL when
        the hour has a DST gap or an offset change (the row reader resolves those)."""
        pairs: set[tuple] = set()
        for col in timestamps:
            pairs.update(
                self.con.execute(
                    f"SELECT DISTINCT _zone, date_trunc('hour', {col}__wall) FROM {self.stage} "
                    f"WHERE _zone IS NOT NULL AND {col}__wall IS NOT NULL AND {col}__p.z = ''"
                ).fetchall()
            )
        parser = self.run.timestamps
        keys, hours, offsets = [], [], []
        for zone_key, hour in pairs:
            offset = parser.hour_offset(hour, zones[zone_key])
            keys.append(zone_key)
            hours.append(hour)
            offsets.append(None if offset is None else offset.total_seconds())
        frame = pd.DataFrame(
            {
                "zone_key": pd.Series(keys, dtype=object),
                "hour": pd.Series(hours, dtype="datetime64[us]"),
                "offset_seconds": pd.Series(offsets, dtype="float64"),
            }
        )
        return self._register("hours", frame)

    # .. output ...........................................................................
    def _output(
        self,
        columns: Sequence[str],
        computed: Sequence[str],
        timestamps: Sequence[str],
        phones: Sequence[str],
        lookups: tuple[str, str],
        bad: Sequence[str],
        post: Sequence[str],
    ) -> None:
        """`chunk.out`: `_fidx`, the export columns, `computed` items, the UTC timestamps
        (`<col>_utc`), the phone columns, `_line`, `_bad` (a row the row reader would
        reject or treat otherwise: items over STAGE `s`), then the `post` items."""
        hours, lookup = lookups
        items = ["s._fidx", *(f"s.{c}" for c in columns), *computed]
        joins: list[str] = []
        checks = ["s._oversize", *bad]
        for col in timestamps:
            wall, zone, alias = f"s.{col}__wall", f"s.{col}__p.z", f"h_{col}"
            joins.append(
                f"LEFT JOIN {hours} AS {alias} ON CAST({alias}.zone_key AS VARCHAR) = s._zone "
                f"AND {alias}.hour = date_trunc('hour', {wall})"
            )
            items.append(
                f"CASE WHEN s.{col} = '' THEN NULL "
                f"WHEN {zone} <> '' THEN {wall} - to_minutes({_offset_minutes(zone)}) "
                f"WHEN s._zone IS NULL THEN {wall} "
                f"ELSE {wall} - to_seconds({alias}.offset_seconds) END AS {col}_utc"
            )
            checks.append(
                f"(s.{col} <> '' AND ({wall} IS NULL "
                f"OR s.{col}__p.d NOT BETWEEN '{YEARS[0]}' AND '{YEARS[1]}' "
                f"OR ({zone} = '' AND s._zone IS NOT NULL AND {alias}.offset_seconds IS NULL)))"
            )
        for col in phones:
            alias = f"p_{col}"
            joins.append(
                f"LEFT JOIN {lookup} AS {alias} ON {alias}.raw = s.{col} "
                f"AND {alias}.region = s._region"
            )
            items += [f"{alias}.{suffix[1:]} AS {col}{suffix}" for suffix, _ in PHONE_SUFFIXES]
        items += ["s._line", f"coalesce({' OR '.join(checks)}, true) AS _bad"]
        extra = f", {', '.join(post)}" if post else ""
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {self.chunk.out} AS SELECT *{extra} FROM "
            f"(SELECT {', '.join(items)} FROM {self.stage} AS s {' '.join(joins)})"
        )
        self.con.execute(f"DROP TABLE {self.stage}")

    def _verdict(
        self,
        members: list[Member],
        columns: Sequence[str],
        ids: Sequence[str],
        rules: Sequence[str],
    ) -> set[int]:
        """fidx of the members with every row clean, unique strip()-stable ids, and the
        number of records planned."""
        stable = " AND ".join(
            f"({c} = '' OR regexp_matches({c}, '{STRIPPED_PATTERN}'))" for c in ids
        )
        broken = " OR ".join(
            ["_bad", f"{ids[0]} = ''", f"NOT ({stable})", *(f"coalesce({r}, false)" for r in rules)]
        )
        counts = {
            fidx: (rows, keys, bad)
            for fidx, rows, keys, bad in self.con.execute(
                f"SELECT _fidx, count(*), count(DISTINCT ({', '.join(ids)})), "
                f"count(*) FILTER (WHERE {broken}) FROM {self.chunk.out} GROUP BY _fidx"
            ).fetchall()
        }
        clean = set()
        for member in members:
            rows, keys, bad = counts.get(member.fidx, (0, 0, 0))
            if rows == member.rows and keys == rows and bad == 0:
                clean.add(member.fidx)
        return clean

    def cleanup(self) -> None:
        for relation in self.registered:
            try:
                self.con.unregister(relation)
            except (duckdb.Error, KeyError):  # pragma: no cover - already gone
                pass
        for table in self.tables:
            self.con.execute(f"DROP TABLE IF EXISTS {table}")


def _labels(
    values: list[tuple], label: Callable[[tuple], tuple], keys: tuple[str, ...], width: int
) -> pd.DataFrame:
    """Distinct raw values (`keys` columns) -> v0.. (the row reader's reading of each)."""
    data = {
        name: pd.Series([value[i] for value in values], dtype=object) for i, name in enumerate(keys)
    }
    labelled = [label(value) for value in values]
    for i in range(width):
        data[f"v{i}"] = pd.Series([row[i] for row in labelled], dtype=object)
    return pd.DataFrame(data)


def _offset_minutes(zone_text: str) -> str:
    """Minutes east of UTC of a `Z` / `+hh:mm` / `-hh:mm` suffix (validated by the pattern)."""
    return (
        f"(CASE WHEN {zone_text} = 'Z' THEN 0 ELSE "
        f"(CASE WHEN left({zone_text}, 1) = '-' THEN -1 ELSE 1 END) * "
        f"(TRY_CAST(substr({zone_text}, 2, 2) AS INTEGER) * 60 "
        f"+ TRY_CAST(substr({zone_text}, 5, 2) AS INTEGER)) END)"
    )


def seconds_between(start: str, end: str) -> str:
    """`(end - start).total_seconds()` of two TIMESTAMP expressions, as the row reader."""
    return f"(CAST(epoch_us({end}) - epoch_us({start}) AS DOUBLE) / 1e6)"


def decimal_rule(column: str, max_seconds: float) -> str:
    """A rule over the output: a non-empty duration that is not a plain decimal or is over
    `max_seconds` (the row reader rejects or reads such values itself)."""
    return (
        f"({column} <> '' AND (NOT regexp_matches({column}, '{DECIMAL_PATTERN}') "
        f"OR TRY_CAST({column} AS DOUBLE) > {max_seconds!r}))"
    )
