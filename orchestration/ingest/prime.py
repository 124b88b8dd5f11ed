"""Warm the phone-number cache before the files are read (a pure speed-up, issue 7).

Parsing and validating numbers with `phonenumbers` dominates the ingest (~300 us a distinct
number, pure Python). Before the per-file readers run, DuckDB pulls the distinct values of
the phone columns of every new file (generic telephony CSVs, CRM and marketing exports) and
`PhoneNormalizer.prime` parses their distinct canonical keys at once, in a process pool when
there are many. Nothing here decides anything: a file DuckDB cannot read, a column under an
alias, a number primed for the wrong region are simply normalized on first use by the reader,
so the rows, rejects and ledger are exactly those of the readers alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import duckdb

from orchestration.config import memory_limit
from orchestration.ingest.normalize import PhoneNormalizer
from orchestration.ingest.schema import PHONE_COLUMNS

log = logging.getLogger(__name__)

TELEPHONY_PHONES = PHONE_COLUMNS["telephony_legs"]


def prime_phones(
    phones: PhoneNormalizer,
    telephony: list[str],
    crm: dict[str, list[str]],
    site_regions: dict[str, str],
    telephony_regions: set[str],
    crm_region: str,
) -> int:
    """Prime `phones` from the files given (absolute paths). `crm` maps a raw table name to
    its files; `site_regions` maps a lower-cased site name to its region; rows without a
    known site are primed for each of `telephony_regions`. Returns the keys parsed."""
    started = time.perf_counter()
    pairs: list[tuple[str, str]] = []
    con = duckdb.connect(config={"memory_limit": memory_limit()})
    try:
        if telephony:
            select = ", ".join(f'"{c}"' for c in TELEPHONY_PHONES)
            selects = (f"{select}, lower(trim(site))", f"{select}, NULL::VARCHAR")
            for rows in _distinct(con, telephony, *selects):
                *numbers, site = rows
                region = site_regions.get(site or "")
                regions = (region,) if region else telephony_regions
                for number in numbers:
                    if number:
                        pairs.extend((number, r) for r in regions)
        for table, files in crm.items():
            for column in PHONE_COLUMNS.get(table, ()):
                for (number,) in _distinct(con, files, f'"{column}"'):
                    if number:
                        pairs.append((number, crm_region))
    finally:
        con.close()
    parsed = phones.prime(pairs)
    log.info(
        "primed %s phone keys from %s values in %.1f s",
        parsed,
        len(pairs),
        time.perf_counter() - started,
    )
    return parsed


def _distinct(con: duckdb.DuckDBPyConnection, files: list[str], *selects: str) -> Iterable[tuple]:
    """Distinct values of the first of `selects` that binds, over the files read as text;
    files DuckDB cannot read are skipped."""

    def run(select: str, paths: list[str]) -> list[tuple]:
        query = (
            f"SELECT DISTINCT {select} FROM read_csv(?, all_varchar=true, header=true, "
            "union_by_name=true, ignore_errors=true)"
        )
        return con.execute(query, [paths]).fetchall()

    for select in selects:
        try:
            return run(select, files)
        except duckdb.Error:
            continue
    rows: set[tuple] = set()
    for file in files:  # one unreadable file (encoding, layout) must not spoil the others
        for select in selects:
            try:
                rows.update(run(select, [file]))
                break
            except duckdb.Error:
                continue
    return rows


def prime_new_files(run, candidates) -> int:
    """Prime the phone cache of an ingest (`loader._Ingest`) from the candidates that are not
    loaded yet under their name (changed files are simply not primed)."""
    telephony: list[str] = []
    crm: dict[str, list[str]] = {}
    for cand in candidates:
        if cand.refusal or cand.rel in run.state.current:
            continue
        name = cand.path.name.lower()
        if cand.directory == "telephony":
            if name.endswith((".csv", ".csv.gz")):
                telephony.append(str(cand.path))
        elif cand.spec is not None and cand.spec.table in PHONE_COLUMNS:
            crm.setdefault(cand.spec.table, []).append(str(cand.path))
    if not telephony and not crm:
        return 0
    regions = {run.default_site.region}
    for row in run.config.seeds.get("telephony_sources", []):
        site = run.sites.get((row.get("site") or "").strip().lower())
        if site is not None:
            regions.add(site.region)
    return prime_phones(
        run.phones,
        telephony,
        crm,
        {name: site.region for name, site in run.sites.items()},
        regions,
        run.config.crm_default_region.strip().upper(),
    )
