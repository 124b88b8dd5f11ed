"""Phone values of many raw numbers at once, for the columnar path (fastpath.py).

`PhoneNormalizer` reads one raw value at a time (~5 us of Python each even when its number
was parsed before). Here DuckDB does the per-value work that needs no parsing, and Python
sees each distinct canonical key once:

- the digit count (`<col>_digits`), for every value;
- the canonical key (`normalize.canonical_phone_key`: a leading `+` and the digits) of
  values written only with digits, spaces, `()-.` and at most a leading `+`, that are not
  blank and not an unknown-caller marker. Every other value (letters, extensions, other
  symbols or whitespace, markers, blanks) goes through `PhoneNormalizer` unchanged;
- Python turns each distinct `(key, region)` into its E.164 with the normalizer's own cache
  and parser (`phonenumbers`, in worker processes when there are many), and computes the
  HMAC of each distinct E.164 (valid) or trimmed text (invalid), as `PhoneNormalizer` does.
  The values without a key that the normalizer parses as written (extensions) are parsed in
  the same round of workers as the keys (`PhoneNormalizer.as_written`).

The result equals `PhoneNormalizer` value for value (`tests/test_fastpath.py` checks both on
edge cases and generated data).
"""

from __future__ import annotations

import logging
import time

import duckdb
import numpy as np
import pandas as pd
import phonenumbers

from orchestration.ingest.normalize import PhoneNormalizer
from orchestration.ingest.schema import read_meta, write_meta

log = logging.getLogger(__name__)

PREFIX = "_ringledger_phone_"
# Characters of a canonical-key value (normalize._FORMATTING plus one leading '+').
KEYABLE = r"^\+?[0-9() .-]*$"


# Keys mapped by earlier ingests of the warehouse, and what they were mapped with.
STORED_KEYS = "raw.phone_keys"
STORED_STAMP = "phone_keys_mapped_with"


def stored_keys_stamp() -> str:
    """What a stored key's E.164 depends on besides the key and region: the phonenumbers
    version (its metadata decides validity). Its HMAC depends on the hashing key: a new key
    empties raw.phone_keys with the other stored keys (loader.rekey_if_needed)."""
    return f"phonenumbers {phonenumbers.__version__}"


def load_seen_keys(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """`create_seen_keys`, filled with the keys earlier ingests of this warehouse mapped
    (`raw.phone_keys`) when they were mapped with this phonenumbers version: a day's files
    then send only their new callers' keys to phonenumbers, not every key."""
    create_seen_keys(con, name)
    if read_meta(con, STORED_STAMP) == stored_keys_stamp():
        con.execute(f"INSERT INTO {name} SELECT canon, region, e164, e164_key FROM {STORED_KEYS}")
    return name


def save_seen_keys(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Add the keys of `name` missing from `raw.phone_keys` (all of them, replacing the stored
    ones, when those were mapped with another phonenumbers version), in one transaction.
    Returns the keys added."""
    stamp = stored_keys_stamp()
    con.begin()
    try:
        if read_meta(con, STORED_STAMP) != stamp:
            con.execute(f"DELETE FROM {STORED_KEYS}")
            write_meta(con, STORED_STAMP, stamp)
        (added,) = con.execute(
            f"INSERT INTO {STORED_KEYS} SELECT DISTINCT s.canon, s.region, s.e164, s.e164_key "
            f"FROM {name} AS s ANTI JOIN {STORED_KEYS} AS k "
            "ON k.canon = s.canon AND k.region = s.region"
        ).fetchone()
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return int(added)


def create_seen_keys(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """An empty temporary table of keys already mapped (canon, region, e164, e164_key), to
    share between the `build_phone_map` calls of one ingest: each chunk then hands Python
    only the keys no earlier chunk had (callers call again: most keys of a chunk were seen)."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} "
        "(canon VARCHAR, region VARCHAR, e164 VARCHAR, e164_key VARCHAR)"
    )
    return name


def build_phone_map(
    con: duckdb.DuckDBPyConnection,
    pairs_sql: str,
    phones: PhoneNormalizer,
    name: str,
    seen: str | None = None,
) -> str:
    """Temporary table `name` (raw, region, e164, is_valid, is_unknown, key, digits) for the
    distinct `(raw, region)` rows of `pairs_sql` (columns named raw and region).

    `seen` (from `create_seen_keys`, same normalizer) holds the keys mapped by earlier calls;
    the keys of this call that it lacks are mapped in Python and added to it."""
    own_seen = seen is None
    if own_seen:
        seen = create_seen_keys(con, f"{PREFIX}seen")
    keyed = f"{PREFIX}keyed"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {keyed} AS "
        "SELECT raw, region, CAST(length(regexp_replace(raw, '[^0-9]', '', 'g')) AS INTEGER) "
        "AS digits, CASE WHEN regexp_full_match(raw, ?) AND trim(raw) <> '' "
        "AND NOT list_contains(?, lower(trim(raw))) "
        "THEN (CASE WHEN starts_with(raw, '+') THEN '+' ELSE '' END) "
        "|| regexp_replace(raw, '[^0-9]', '', 'g') END AS canon "
        f"FROM (SELECT DISTINCT raw, region FROM ({pairs_sql}))",
        [KEYABLE.strip("^$"), sorted(phones.markers)],
    )
    # distinct keys not mapped by an earlier call -> E.164 (the normalizer's cache, then
    # phonenumbers for new ones)
    keys = con.execute(
        f"SELECT DISTINCT k.canon, k.region FROM {keyed} AS k "
        f"ANTI JOIN {seen} AS s ON s.canon = k.canon AND s.region = k.region "
        "WHERE k.canon IS NOT NULL"
    ).fetchall()
    # values without a key (extensions, other symbols, markers, blanks): the normalizer's;
    # those it parses as written go to phonenumbers in the keys' round of workers
    others = con.execute(f"SELECT raw, region FROM {keyed} WHERE canon IS NULL").fetchall()
    started = time.perf_counter()
    parsed = phones.prime_keys(keys, texts=phones.as_written(others))
    log.info(
        "phone map: %s distinct keys, %s values without one, %s parsed in %.1f s",
        len(keys),
        len(others),
        parsed,
        time.perf_counter() - started,
    )
    e164 = [phones.e164_of_key(key, region) for key, region in keys]
    key_frame = pd.DataFrame(
        {
            "canon": pd.Series([k for k, _ in keys], dtype=object),
            "region": pd.Series([r for _, r in keys], dtype=object),
            "e164": pd.Series(e164, dtype=object),
            "e164_key": pd.Series([phones.e164_hmac(v) if v else None for v in e164], dtype=object),
        }
    )
    keys_rel = f"{PREFIX}keys"
    con.register(keys_rel, key_frame)
    try:
        con.execute(
            f"INSERT INTO {seen} SELECT CAST(canon AS VARCHAR), CAST(region AS VARCHAR), "
            f"CAST(e164 AS VARCHAR), CAST(e164_key AS VARCHAR) FROM {keys_rel}"
        )
        # invalid numbers are keyed by the HMAC of their trimmed text
        invalid = [
            text
            for (text,) in con.execute(
                f"SELECT DISTINCT trim(k.raw) FROM {keyed} AS k JOIN {seen} AS m "
                "ON m.canon = k.canon AND m.region = k.region "
                "WHERE m.e164 IS NULL"
            ).fetchall()
        ]
        invalid_rel = f"{PREFIX}invalid"
        con.register(
            invalid_rel,
            pd.DataFrame(
                {
                    "text": pd.Series(invalid, dtype=object),
                    "text_key": pd.Series([phones.hmac_hex(t) for t in invalid], dtype=object),
                }
            ),
        )
        # everything else: the normalizer itself (primed above)
        values = [phones(raw, region) for raw, region in others]
        cols = list(zip(*values, strict=True)) if values else [(), (), (), (), ()]
        others_rel = f"{PREFIX}others"
        con.register(
            others_rel,
            pd.DataFrame(
                {
                    "raw": pd.Series([r for r, _ in others], dtype=object),
                    "region": pd.Series([g for _, g in others], dtype=object),
                    "e164": pd.Series(cols[0], dtype=object),
                    "is_valid": np.asarray(cols[1], dtype=bool),
                    "is_unknown": np.asarray(cols[2], dtype=bool),
                    "key": pd.Series(cols[3], dtype=object),
                    "digits": np.asarray(cols[4], dtype=np.int32),
                }
            ),
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS "
            "SELECT k.raw, k.region, CAST(m.e164 AS VARCHAR) AS e164, "
            "m.e164 IS NOT NULL AS is_valid, false AS is_unknown, "
            "CAST(coalesce(m.e164_key, i.text_key) AS VARCHAR) AS key, k.digits "
            f"FROM {keyed} AS k JOIN {seen} AS m ON m.canon = k.canon "
            "AND m.region = k.region "
            f"LEFT JOIN {invalid_rel} AS i ON m.e164 IS NULL "
            "AND CAST(i.text AS VARCHAR) = trim(k.raw) "
            "UNION ALL "
            "SELECT CAST(raw AS VARCHAR), CAST(region AS VARCHAR), CAST(e164 AS VARCHAR), "
            "is_valid, is_unknown, CAST(key AS VARCHAR), digits "
            f"FROM {others_rel}"
        )
    finally:
        for rel in (keys_rel, f"{PREFIX}invalid", f"{PREFIX}others"):
            try:
                con.unregister(rel)
            except (duckdb.Error, KeyError):  # pragma: no cover - not registered yet
                pass
        con.execute(f"DROP TABLE IF EXISTS {keyed}")
        if own_seen:
            con.execute(f"DROP TABLE IF EXISTS {seen}")
    return name
