"""Load a landing directory into schema `raw` (spec: inputs-and-outputs.md, Landing directory).

See the package docstring (`orchestration/ingest/__init__.py`) for the ledger semantics.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import astuple, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from orchestration.config import Config
from orchestration.ingest.crm import ENTITIES, CrmContext, EntitySpec, entity_for, read_entity
from orchestration.ingest.csvtext import CsvText
from orchestration.ingest.fastpath import ColumnarPlan
from orchestration.ingest.identity import refresh_contact_identities
from orchestration.ingest.normalize import (
    PhoneNormalizer,
    TimestampParser,
    decode_text,
    zone_for,
)
from orchestration.ingest.prime import prime_new_files
from orchestration.ingest.rows import FileRefused, ParsedFile, uncompress
from orchestration.ingest.schema import (
    DATA_TABLES,
    PHONE_COLUMNS,
    SIDE_TABLES,
    TABLES,
    create_raw_tables,
    read_meta,
    write_meta,
)
from orchestration.ingest.phonemap import STORED_KEYS
from orchestration.ingest.telephony import (
    TELEPHONY_SUFFIXES,
    TELEPHONY_TABLE,
    TelephonyContext,
    build_sites,
    check_layout,
    detect_format,
    is_queue_log_name,
    match_source,
)

log = logging.getLogger(__name__)

LANDING_SUBDIRS: tuple[str, ...] = ("crm", "marketing", "telephony")
TELEPHONY_ENTITY = "telephony"
DUPLICATE_PREFIX = "duplicate of "
COMMIT_ROWS = 500_000  # rows written per transaction at most (see _Ingest._transaction)
_FINGERPRINT_INPUT = "ringledger:hash-key-fingerprint"
_FINGERPRINT_NAME = "hash_key_fingerprint"  # in raw.ingest_meta
HASH_CACHE_TABLE = "file_hash_cache"  # in schema raw, outside the dbt contract (_HashCache)
# A stored hash is reused only for a file last modified at least this long before it was
# hashed (git's "racy" rule): a write within the file system's timestamp granularity of
# the previous one can leave the mtime unchanged, so a file modified around the moment it
# was hashed may since have changed without its size or mtime showing it.
RACY_NS = 2_000_000_000

ENTITY_TABLES: dict[str, str] = {
    TELEPHONY_ENTITY: TELEPHONY_TABLE,
    **{name: spec.table for name, spec in ENTITIES.items()},
}
# Other tables a telephony file's rows may live in (queue_log events, clock checks).
ENTITY_OTHER_TABLES: dict[str, tuple[str, ...]] = {
    TELEPHONY_ENTITY: ("asterisk_queue_events", *SIDE_TABLES),
}


# -- results ------------------------------------------------------------------------------


@dataclass
class FileOutcome:
    file: str
    status: str  # loaded | duplicate | skipped_unchanged | refused
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    reason: str | None = None
    columnar: bool = False  # read by the columnar path (fastpath.py)


@dataclass
class IngestSummary:
    files_seen: int = 0
    files_loaded: int = 0  # new ledger rows with status `loaded` (duplicates included)
    files_skipped_unchanged: int = 0
    files_superseded: int = 0  # earlier loads of a file name superseded in this run
    files_refused: list[tuple[str, str]] = field(default_factory=list)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_loaded_by_table: dict[str, int] = field(default_factory=dict)  # in this run
    table_row_counts: dict[str, int] = field(default_factory=dict)  # every raw table, after
    files: list[FileOutcome] = field(default_factory=list)
    files_columnar: int = 0  # files read by the columnar path (fastpath.py)


# -- discovery ----------------------------------------------------------------------------


@dataclass
class Candidate:
    rel: str  # posix path relative to the landing directory
    path: Path
    directory: str  # telephony | crm | marketing
    spec: EntitySpec | None = None  # CRM / marketing entity
    refusal: str | None = None  # refused before reading


def _classify(directory: str, name: str) -> tuple[EntitySpec | None, str | None]:
    """(entity spec, refusal) of a file name in a landing subdirectory."""
    if directory == "telephony":
        if name.lower().endswith(TELEPHONY_SUFFIXES) or is_queue_log_name(name):
            return None, None
        return None, (
            "unsupported file type under telephony/ (this version reads "
            + ", ".join(f"*{s}" for s in TELEPHONY_SUFFIXES)
            + ", queue_log*)"
        )
    spec = entity_for(directory, name)
    if spec is not None:
        return spec, None
    expected = ", ".join(f"{s.entity}*.csv" for s in ENTITIES.values() if s.directory == directory)
    return None, f"unrecognized {directory} export name (expected {expected})"


def discover(landing_dir: Path) -> list[Candidate]:
    """Every non-hidden file under telephony/, crm/, marketing/, in relative-path order."""
    found: list[Candidate] = []
    for directory in LANDING_SUBDIRS:
        root = landing_dir / directory
        if root.is_dir():
            _walk(root, landing_dir, directory, found, set())
    found.sort(key=lambda c: c.rel)
    return found


def _walk(folder: Path, landing: Path, directory: str, out: list[Candidate], seen: set) -> None:
    try:
        real = folder.resolve()
        if real in seen:
            return
        seen.add(real)
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        rel = folder.relative_to(landing).as_posix()
        out.append(Candidate(rel, folder, directory, refusal=f"unreadable: {_os_reason(exc)}"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        rel = path.relative_to(landing).as_posix()
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        spec, refusal = _classify(directory, entry.name)
        if is_dir:
            if refusal is None:  # a directory named like an export file
                out.append(Candidate(rel, path, directory, refusal="unreadable: is a directory"))
            else:
                _walk(path, landing, directory, out, seen)
            continue
        out.append(Candidate(rel, path, directory, spec, refusal))


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


# -- ledger state -------------------------------------------------------------------------


@dataclass
class _Current:
    content_hash: str
    entity: str
    is_duplicate: bool


@dataclass
class _LedgerState:
    current: dict[str, _Current]  # file -> its `loaded` ledger row
    owners: dict[tuple[str, str], str]  # (content hash, entity) -> file whose rows hold it
    refusals: set[tuple[str, str | None, str]]
    next_seq: int

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection) -> _LedgerState:
        rows = con.execute(
            "SELECT file, content_hash, status, reason, entity, load_seq "
            "FROM raw.load_ledger ORDER BY load_seq"
        ).fetchall()
        state = cls({}, {}, set(), 1)
        for file, content_hash, status, reason, entity, load_seq in rows:
            if load_seq is not None:
                state.next_seq = max(state.next_seq, int(load_seq) + 1)
            if status == "loaded":
                dup = bool(reason and reason.startswith(DUPLICATE_PREFIX))
                state.current[file] = _Current(content_hash, entity, dup)
                if not dup:
                    state.owners.setdefault((content_hash, entity), file)
            elif status == "refused":
                state.refusals.add((file, content_hash, reason))
        return state

    def take_seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def replace(self, file: str, content_hash: str, entity: str, duplicate: bool) -> None:
        old = self.current.get(file)
        if old is not None and self.owners.get((old.content_hash, old.entity)) == file:
            del self.owners[(old.content_hash, old.entity)]
        self.current[file] = _Current(content_hash, entity, duplicate)
        if not duplicate:
            self.owners.setdefault((content_hash, entity), file)


# -- content hashes -----------------------------------------------------------------------


@dataclass
class _Hashed:
    size: int
    mtime_ns: int
    content_hash: str
    hashed_at_ns: int  # wall clock just before the file was stat'ed and read


class _HashCache:
    """sha256 of the landing files by absolute path (`raw.file_hash_cache`), so that an
    unchanged file is not read again on every run. The ledger stays keyed by content hash:
    this only decides when the hash of the bytes on disk is already known.

    A stored hash is trusted while the file's size and mtime_ns are those it had when it was
    hashed and the file was modified at least RACY_NS before the hashing (see RACY_NS); any
    other file is read and hashed again. Like git and rsync, this misses a rewrite that keeps
    the size and restores an old mtime (`touch -d`, `cp -p` of other content)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS raw.{HASH_CACHE_TABLE} (path VARCHAR, size BIGINT, "
            "mtime_ns BIGINT, content_hash VARCHAR, hashed_at_ns BIGINT)"
        )
        rows = con.execute(
            f"SELECT path, size, mtime_ns, content_hash, hashed_at_ns FROM raw.{HASH_CACHE_TABLE}"
        ).fetchall()
        self.entries = {row[0]: _Hashed(*row[1:]) for row in rows}
        self.changed = False

    def known(self, path: Path) -> str | None:
        """The stored hash of the file when it can be trusted (see class), else None."""
        entry = self.entries.get(str(path.absolute()))
        if entry is None:
            return None
        try:
            st = path.stat()
        except OSError:
            return None
        if (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
            return None
        if st.st_mtime_ns > entry.hashed_at_ns - RACY_NS:
            return None
        return entry.content_hash

    def read(self, path: Path) -> tuple[bytes, str]:
        """The file's bytes and their sha256, remembered with the file's stat. OSError when
        unreadable."""
        # The clock is read first: a write after this moment leaves the file an mtime no
        # older than it by more than the timestamp granularity (under RACY_NS), so if that
        # mtime equals the one stored here, the entry is racy and not trusted.
        hashed_at_ns = time.time_ns()
        st = path.stat()
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if len(data) == st.st_size:  # else it changed while being read: not remembered
            entry = _Hashed(st.st_size, st.st_mtime_ns, digest, hashed_at_ns)
            self.entries[str(path.absolute())] = entry
            self.changed = True
        return data, digest

    def write(self, con: duckdb.DuckDBPyConnection, paths: list[Path]) -> None:
        """Store the entries of `paths` (the files of this run; the others are dropped)."""
        seen = {str(path.absolute()) for path in paths}
        kept = {key: entry for key, entry in self.entries.items() if key in seen}
        if not self.changed and len(kept) == len(self.entries):
            return
        self.entries = kept
        frame = pd.DataFrame(
            [(key, *astuple(entry)) for key, entry in kept.items()],
            columns=["path", *(f.name for f in fields(_Hashed))],
        )
        con.execute(f"DELETE FROM raw.{HASH_CACHE_TABLE}")
        if kept:
            _insert_frame(con, HASH_CACHE_TABLE, frame)
        self.changed = False


# -- frames -------------------------------------------------------------------------------


def _series(values: tuple | list, sql_type: str) -> Any:
    if sql_type == "TIMESTAMP":
        return pd.Series(values, dtype="datetime64[us]")
    if sql_type == "BOOLEAN":
        return np.asarray(values, dtype=bool)
    if sql_type == "INTEGER":
        return np.asarray(values, dtype=np.int32)
    if sql_type == "BIGINT":
        return np.asarray(values, dtype=np.int64)
    if sql_type == "DOUBLE":
        return pd.Series(values, dtype="float64")  # None -> NaN -> NULL
    return pd.Series(values, dtype=object)


def _insert_frame(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    extra_sql: str = "",
    params: list | None = None,
) -> None:
    name = f"_ringledger_{table}"
    con.register(name, frame)
    try:
        con.execute(
            f"INSERT INTO raw.{table} BY NAME SELECT *{extra_sql} FROM {name}", params or []
        )
    finally:
        con.unregister(name)


def _rows_frame(parsed: ParsedFile) -> pd.DataFrame:
    types = dict(TABLES[parsed.table])
    columns = list(zip(*parsed.rows, strict=True))
    data = {
        name: _series(values, types[name])
        for name, values in zip(parsed.row_columns, columns, strict=True)
    }
    data["_line"] = np.asarray(parsed.lines, dtype=np.int64)
    return pd.DataFrame(data)


def _side_frame(table: str, names: list[str], rows: list[tuple]) -> pd.DataFrame:
    types = dict(TABLES[table])
    columns = list(zip(*rows, strict=True))
    data = {name: _series(values, types[name]) for name, values in zip(names, columns, strict=True)}
    data["_line"] = np.zeros(len(rows), dtype=np.int64)
    return pd.DataFrame(data)


# -- the ingest ---------------------------------------------------------------------------


class _Ingest:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        landing_dir: Path,
        config: Config,
        hash_key: bytes,
        columnar: bool = True,
    ):
        self.con = con
        self.columnar: ColumnarPlan | None = None  # set by ingest_landing when enabled
        self.use_columnar = columnar
        self._open = False  # a transaction is open (see _transaction)
        self._pending = 0  # rows written in it
        self._chunk: int | None = None  # the columnar chunk of the files in it
        self.landing = landing_dir
        self.config = config
        self.phones = PhoneNormalizer(hash_key, config.unknown_markers)
        self.timestamps = TimestampParser()
        self.sites = build_sites(config)
        self.default_site = self.sites[config.default_site.strip().lower()]
        self.crm_zone = (
            None if config.crm_timezone.upper() == "UTC" else zone_for(config.crm_timezone)
        )
        self.summary = IngestSummary(rows_loaded_by_table={t: 0 for t in DATA_TABLES})
        self.state = _LedgerState.read(con)
        self.hashes = _HashCache(con)
        self.unchanged: set[str] = set()  # files known unchanged without reading them

    def find_unchanged(self, candidates: list[Candidate]) -> None:
        """The files whose stored hash (see _HashCache) is that of their current load."""
        for cand in candidates:
            current = self.state.current.get(cand.rel)
            if current is None or cand.refusal:
                continue
            if self.hashes.known(cand.path) == current.content_hash:
                self.unchanged.add(cand.rel)

    # .. one file ..........................................................................
    def process(self, cand: Candidate) -> None:
        self.summary.files_seen += 1
        # files of one columnar chunk share a transaction; any other file starts its own
        chunk = self.columnar.chunk_of(cand.rel) if self.columnar else None
        if chunk is None or chunk != self._chunk:
            self.commit()
        self._chunk = chunk
        entity = (
            TELEPHONY_ENTITY
            if cand.directory == "telephony"
            else (cand.spec.entity if cand.spec else None)
        )
        if cand.refusal:
            self._refuse(cand, None, cand.refusal, entity, None)
            return
        if cand.rel in self.unchanged:
            self._skip_unchanged(cand)
            return
        # a clean file of a columnar chunk was read (and hashed) when its chunk was built;
        # any other file is read here (again, when its chunk found it not clean)
        taken = self.columnar.take(cand.rel) if self.columnar else None
        columnar = taken[1] if taken else None
        data = b""
        if taken is not None and columnar is not None:
            digest = taken[0]
        else:
            try:
                data, digest = self.hashes.read(cand.path)
            except IsADirectoryError:
                self._refuse(cand, None, "unreadable: is a directory", entity, None)
                return
            except OSError as exc:
                self._refuse(cand, None, f"unreadable: {_os_reason(exc)}", entity, None)
                return
        current = self.state.current.get(cand.rel)
        if current is not None and current.content_hash == digest:
            self._skip_unchanged(cand)  # e.g. touched, or copied over with the same bytes
            return
        assert entity is not None
        fmt: str | None = "csv" if cand.spec else None
        try:
            payload = b"" if columnar is not None else uncompress(cand.rel, data)
            owner = self.state.owners.get((digest, entity))
            if current is None and owner is not None and owner != cand.rel:
                self._write(
                    cand,
                    digest,
                    entity,
                    self._owner_format(owner),
                    None,
                    reason=f"{DUPLICATE_PREFIX}{owner}",
                    old=None,
                )
                return
            parsed = columnar or self._read_rows(cand, payload)
        except FileRefused as refused:
            self._refuse(cand, digest, str(refused), entity, fmt)
            return
        if parsed.relation:
            self.summary.files_columnar += 1
        self._write(cand, digest, entity, parsed.format, parsed, reason=None, old=current)

    def _skip_unchanged(self, cand: Candidate) -> None:
        self.summary.files_skipped_unchanged += 1
        self.summary.files.append(FileOutcome(cand.rel, "skipped_unchanged"))

    def _read_rows(self, cand: Candidate, payload: bytes) -> ParsedFile:
        """The file's rows and rejects through the row readers; FileRefused when unreadable."""
        text, encoding = decode_text(payload)
        if encoding != "utf-8":
            log.info("%s: not UTF-8, decoded as %s", cand.rel, encoding.upper())
        csv_text = CsvText.from_text(text)
        records = csv_text.records()
        first = next(records, None)
        if first is None:
            raise FileRefused("no recognizable header (no content)")
        if first[2] is None:
            raise FileRefused(f"no recognizable header ({first[3]})")
        if cand.spec is not None:
            return read_entity(cand.spec, first, records, csv_text, self._crm_context(cand))
        parsed, _ = self._read_telephony(cand, first, records, csv_text)
        return parsed

    def _read_telephony(
        self, cand: Candidate, first, records: Iterator, csv_text: CsvText
    ) -> tuple[ParsedFile, str | None]:
        source_path = cand.rel.split("/", 1)[1]
        sources = self.config.seeds.get("telephony_sources", [])
        source = match_source(source_path, sources)
        fmt_name = detect_format(first[2], source_path, sources)
        fmt = check_layout(fmt_name, source)
        site_name = ((source or {}).get("site") or "").strip()
        if site_name:
            file_site = self.sites.get(site_name.lower())
            if file_site is None:
                raise FileRefused(
                    f"telephony_sources site {site_name!r} (pattern {source['pattern']!r}) "
                    f"is not in the sites seed"
                )
        else:
            file_site = self.default_site
        ctx = TelephonyContext(
            rel_path=cand.rel,
            source_path=source_path,
            source=source,
            config=self.config,
            phones=self.phones,
            timestamps=self.timestamps,
            sites=self.sites,
            file_site=file_site,
        )
        return fmt.read(first, records, csv_text, ctx), fmt.name

    def _crm_context(self, cand: Candidate) -> CrmContext:
        return CrmContext(
            rel_path=cand.rel,
            config=self.config,
            phones=self.phones,
            timestamps=self.timestamps,
            zone=self.crm_zone,
            region=self.config.crm_default_region.strip().upper(),
        )

    def _owner_format(self, owner: str) -> str | None:
        row = _one(
            self.con,
            "SELECT format FROM raw.load_ledger WHERE file = ? AND status = 'loaded'",
            [owner],
        )
        return row[0] if row else None

    # .. ledger writes .....................................................................
    def _refuse(
        self, cand: Candidate, digest: str | None, reason: str, entity: str | None, fmt: str | None
    ) -> None:
        log.warning("%s: refused: %s", cand.rel, reason)
        self.summary.files_refused.append((cand.rel, reason))
        self.summary.files.append(FileOutcome(cand.rel, "refused", reason=reason))
        if (cand.rel, digest, reason) in self.state.refusals:
            return  # refused again for the same reason: one ledger row is enough
        self._transaction(
            lambda: self._ledger_row(
                cand.rel,
                digest,
                str(uuid.uuid4()),
                fmt,
                0,
                0,
                0,
                "refused",
                reason,
                entity,
                self.state.take_seq(),
            )
        )
        self.state.refusals.add((cand.rel, digest, reason))

    def _write(
        self,
        cand: Candidate,
        digest: str,
        entity: str,
        fmt: str | None,
        parsed: ParsedFile | None,
        reason: str | None,
        old: _Current | None,
    ) -> None:
        load_id = str(uuid.uuid4())
        seq = self.state.take_seq()
        rows_read = parsed.rows_read if parsed else 0
        rows_loaded = parsed.rows_loaded if parsed else 0
        rows_rejected = parsed.rows_rejected if parsed else 0
        superseded = 0

        def body() -> None:
            nonlocal superseded
            if old is not None:
                for table in (ENTITY_TABLES[old.entity], *ENTITY_OTHER_TABLES.get(old.entity, ())):
                    self.con.execute(f"DELETE FROM raw.{table} WHERE _file = ?", [cand.rel])
                (superseded,) = _one(
                    self.con,
                    "SELECT count(*) FROM raw.load_ledger WHERE file = ? AND status = 'loaded'",
                    [cand.rel],
                )
                self.con.execute(
                    "UPDATE raw.load_ledger SET status = 'superseded' "
                    "WHERE file = ? AND status = 'loaded'",
                    [cand.rel],
                )
            if parsed is not None and parsed.relation and self.columnar is not None:
                # written with the rest of its chunk before this transaction commits
                self.columnar.defer(cand.rel, load_id, seq)
            elif parsed is not None and parsed.rows:
                extra = ", ?::VARCHAR AS _file, ?::VARCHAR AS _load_id, ?::BIGINT AS _load_seq"
                params: list[Any] = [cand.rel, load_id, seq]
                for name, value in parsed.constants.items():
                    extra += f", ?::VARCHAR AS {name}"
                    params.append(value)
                _insert_frame(self.con, parsed.table, _rows_frame(parsed), extra, params)
            if parsed is not None:
                meta = ", ?::VARCHAR AS _file, ?::VARCHAR AS _load_id, ?::BIGINT AS _load_seq"
                for table, (names, rows) in parsed.side_rows.items():
                    if rows:
                        frame = _side_frame(table, names, rows)
                        _insert_frame(self.con, table, frame, meta, [cand.rel, load_id, seq])
            if parsed is not None and parsed.rejects:
                lines, texts, reasons = zip(*parsed.rejects, strict=True)
                frame = pd.DataFrame(
                    {
                        "line_number": np.asarray(lines, dtype=np.int64),
                        "raw_text": pd.Series(texts, dtype=object),
                        "reason": pd.Series(reasons, dtype=object),
                    }
                )
                _insert_frame(
                    self.con,
                    "rejected_rows",
                    frame,
                    ", ?::VARCHAR AS load_id, ?::VARCHAR AS file",
                    [load_id, cand.rel],
                )
            self._ledger_row(
                cand.rel,
                digest,
                load_id,
                fmt,
                rows_read,
                rows_loaded,
                rows_rejected,
                "loaded",
                reason,
                entity,
                seq,
            )

        self._transaction(body, rows_read)
        self.state.replace(cand.rel, digest, entity, duplicate=parsed is None)
        s = self.summary
        s.files_loaded += 1
        s.files_superseded += superseded
        s.rows_read += rows_read
        s.rows_loaded += rows_loaded
        s.rows_rejected += rows_rejected
        if parsed is not None:
            s.rows_loaded_by_table[parsed.table] += rows_loaded
        status = "duplicate" if parsed is None else "loaded"
        s.files.append(
            FileOutcome(
                cand.rel,
                status,
                rows_read,
                rows_loaded,
                rows_rejected,
                reason,
                columnar=bool(parsed is not None and parsed.relation),
            )
        )

    def _ledger_row(
        self,
        file: str,
        digest: str | None,
        load_id: str,
        fmt: str | None,
        rows_read: int,
        rows_loaded: int,
        rows_rejected: int,
        status: str,
        reason: str | None,
        entity: str | None,
        seq: int,
    ) -> None:
        self.con.execute(
            "INSERT INTO raw.load_ledger (file, content_hash, load_id, loaded_at, format, "
            "rows_read, rows_loaded, rows_rejected, status, reason, entity, load_seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                file,
                digest,
                load_id,
                datetime.now(UTC).replace(tzinfo=None),
                fmt,
                rows_read,
                rows_loaded,
                rows_rejected,
                status,
                reason,
                entity,
                seq,
            ],
        )

    def _transaction(self, body, rows: int = 0) -> None:
        """All writes of one file in one transaction: a crash never leaves half a file.

        Consecutive files of one columnar chunk (fastpath.py) share the transaction until
        COMMIT_ROWS rows are written (per-file commits cost ~40% of a columnar ingest; big
        transactions write their rows straight to the database file), so a crash loses at
        most those files' work, which the next run redoes. Every other file commits alone."""
        if not self._open:
            self.con.begin()
            self._open = True
        try:
            body()
        except BaseException:
            self.rollback()
            raise
        self._pending += rows
        if self._pending >= COMMIT_ROWS:
            self.commit()

    def rollback(self) -> None:
        """Roll the open transaction back, if any."""
        if self._open:
            self._open = False
            self._pending = 0
            if self.columnar is not None:
                self.columnar.discard()
            self.con.rollback()

    def commit(self) -> None:
        """Commit the open transaction, if any."""
        if self._open:
            if self.columnar is not None:
                self.columnar.flush()  # inside the transaction: the chunk's deferred rows
            self._open = False
            self._pending = 0
            self.con.commit()

    def save_hashes(self, candidates: list[Candidate]) -> None:
        """Store the content hashes of this run (in the open transaction, if any)."""
        self._transaction(lambda: self.hashes.write(self.con, [c.path for c in candidates]))

    # .. hashing key .......................................................................
    def rekey_if_needed(self) -> bool:
        """Recompute every stored `*_key` when the hashing key changed since the last ingest."""
        fingerprint = self.phones.hmac_hex(_FINGERPRINT_INPUT)
        stored = read_meta(self.con, _FINGERPRINT_NAME)
        if stored == fingerprint:
            return False

        def body() -> None:
            for table, columns in PHONE_COLUMNS.items():
                for col in columns:
                    pairs = self.con.execute(
                        f"SELECT DISTINCT {col}, {col}_e164 FROM raw.{table} "
                        f"WHERE {col}_key IS NOT NULL"
                    ).fetchall()
                    if not pairs:
                        continue
                    frame = pd.DataFrame(
                        {
                            "raw_value": pd.Series([p[0] for p in pairs], dtype=object),
                            "e164": pd.Series([p[1] for p in pairs], dtype=object),
                            "new_key": pd.Series(
                                [
                                    self.phones.hmac_hex(e164 if e164 else raw.strip())
                                    for raw, e164 in pairs
                                ],
                                dtype=object,
                            ),
                        }
                    )
                    self.con.register("_ringledger_rekey", frame)
                    try:
                        self.con.execute(
                            f"UPDATE raw.{table} AS t SET {col}_key = m.new_key "
                            f"FROM _ringledger_rekey AS m WHERE t.{col} = m.raw_value "
                            f"AND t.{col}_e164 IS NOT DISTINCT FROM m.e164 "
                            f"AND t.{col}_key IS NOT NULL"
                        )
                    finally:
                        self.con.unregister("_ringledger_rekey")
            # the phone keys stored for later ingests carry HMACs under the old key
            self.con.execute(f"DELETE FROM {STORED_KEYS}")
            write_meta(self.con, _FINGERPRINT_NAME, fingerprint)

        self._transaction(body)
        return stored is not None


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> Any:
    """First row of a query, fetching everything: DuckDB 2.0 refuses `con.sql` while an
    `execute()` result is only partly fetched, so no result is ever left open."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def ingest_landing(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    config: Config,
    hash_key: bytes,
    progress: bool = False,
    columnar: bool = True,
) -> IngestSummary:
    """Load every new or corrected export of `landing_dir` into schema `raw`.

    `columnar=False` reads every file with the row readers (the columnar path,
    fastpath.py, loads the same rows; tests compare the two)."""
    if not hash_key:
        raise ValueError("hash_key must not be empty")
    landing_dir = Path(landing_dir)
    create_raw_tables(con)
    if not landing_dir.is_dir():
        raise FileNotFoundError(f"landing directory not found: {landing_dir}")
    run = _Ingest(con, landing_dir, config, hash_key, columnar)
    rekeyed = run.rekey_if_needed()
    run.commit()
    if rekeyed:
        log.warning("hashing key changed since the last ingest: stored *_key columns recomputed")
    candidates = discover(landing_dir)
    run.find_unchanged(candidates)
    # files that may be new or changed: the others are not read at all, not even planned
    maybe_new = [c for c in candidates if c.rel not in run.unchanged]
    if run.use_columnar:
        run.columnar = ColumnarPlan(run, maybe_new)
    planned = run.columnar.planned if run.columnar else set()
    try:
        # a speed-up only: warms the phone-number cache for the files the row readers will read
        prime_new_files(run, [c for c in maybe_new if c.rel not in planned])
        if progress and candidates:
            from rich.console import Console
            from rich.progress import Progress

            with Progress(console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task("ingest", total=len(candidates))
                for cand in candidates:
                    bar.update(task, description=f"ingest {cand.rel}")
                    run.process(cand)
                    bar.advance(task)
        else:
            for cand in candidates:
                run.process(cand)
        run.save_hashes(candidates)
        run.commit()
        if run.columnar:
            run.columnar.save_phone_keys()
    except BaseException:
        run.rollback()  # like a crash: the files of the open transaction load next time
        raise
    finally:
        run.phones.close()
        if run.columnar:
            run.columnar.close()
    refresh_contact_identities(con)
    summary = run.summary
    for table in TABLES:
        (count,) = _one(con, f"SELECT count(*) FROM raw.{table}")
        summary.table_row_counts[table] = int(count)
    return summary
