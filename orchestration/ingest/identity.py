"""Caller identity: CRM contacts sharing a normalized number, merged transitively.

Built from the current contacts (the newest copy of each contact_id: highest `_load_seq`,
then latest line) after every ingest that changed them (`refresh_contact_identities`): in
full, or, when contacts were only added since the last build, for the identities those
contacts can touch (`update_contact_identities`).
Survivor of a group = earliest `created_at_utc` (unknown creation time sorts last), ties by
contact_id; contacts without a valid number are an identity of their own.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from orchestration.ingest.schema import read_meta, write_meta

_CURRENT_CONTACTS = """
    SELECT contact_id, created_at_utc, phone_e164, mobile_phone_e164
    FROM raw.crm_contacts
    QUALIFY row_number() OVER (
        PARTITION BY contact_id ORDER BY _load_seq DESC, _line DESC
    ) = 1
"""

# What the identities were built from, stored in raw.ingest_meta with them. raw.crm_contacts
# only ever changes by files: rows inserted with a `_load_seq` above every earlier one, rows
# deleted by file (supersession). So its row count and highest `_load_seq` change whenever
# its rows do; the identities' own row count catches a table emptied or recreated since.
# _RULES names the merge rules: change it when merge_identities changes.
_STATE_NAME = "contact_identities_built_from"
_RULES = "1"
_STATE = """
    SELECT concat_ws(':', ?, (SELECT count(*) FROM raw.crm_contacts),
        (SELECT coalesce(max(_load_seq), 0) FROM raw.crm_contacts),
        (SELECT count(*) FROM raw.crm_contact_identities))
"""


def merge_identities(
    contacts: list[tuple[str, datetime | None, str | None, str | None]],
) -> list[tuple[str, str, int]]:
    """(contact_id, created_at_utc, e164, e164) -> (contact_id, identity_id, identity_size)."""
    parent = list(range(len(contacts)))

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    owner: dict[str, int] = {}
    for i, (_, _, phone, mobile) in enumerate(contacts):
        for number in (phone, mobile):
            if not number:
                continue
            j = owner.setdefault(number, i)
            if j != i:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[ri] = rj

    def rank(i: int) -> tuple[bool, datetime, str]:
        contact_id, created, _, _ = contacts[i]
        return (created is None, created or datetime.min, contact_id)

    survivor: dict[int, int] = {}
    size: dict[int, int] = {}
    for i in range(len(contacts)):
        root = find(i)
        size[root] = size.get(root, 0) + 1
        best = survivor.get(root)
        if best is None or rank(i) < rank(best):
            survivor[root] = i
    out = []
    for i, (contact_id, _, _, _) in enumerate(contacts):
        root = find(i)
        out.append((contact_id, contacts[survivor[root]][0], size[root]))
    return out


def _state(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute(_STATE, [_RULES]).fetchone()[0]


def _appended_since(con: duckdb.DuckDBPyConnection, stored: str) -> int | None:
    """The `_load_seq` the identities were built through when the contacts have only gained
    rows since (and the identities table is as it was left); None when anything else changed
    (rows deleted by a superseding file, other merge rules, the identities touched)."""
    parts = stored.split(":")
    if len(parts) != 4 or parts[0] != _RULES:
        return None
    try:
        count, through, identities = (int(part) for part in parts[1:])
    except ValueError:
        return None
    (now_count, appended, now_identities) = con.execute(
        "SELECT (SELECT count(*) FROM raw.crm_contacts), "
        "(SELECT count(*) FROM raw.crm_contacts WHERE _load_seq > ?), "
        "(SELECT count(*) FROM raw.crm_contact_identities)",
        [through],
    ).fetchone()
    if now_identities != identities or now_count != count + appended:
        return None
    return through


def refresh_contact_identities(con: duckdb.DuckDBPyConnection) -> bool:
    """Bring raw.crm_contact_identities up to the contacts unless it was built from them as
    they are (see _STATE): for the identities the added contacts can touch when contacts were
    only added since, else in full. True when anything was recomputed."""
    stored = read_meta(con, _STATE_NAME)
    if stored == _state(con):
        return False
    through = _appended_since(con, stored) if stored is not None else None
    if through is None:
        rebuild_contact_identities(con)
    else:
        update_contact_identities(con, through)
    return True


# The contacts whose identity the contacts loaded after a `_load_seq` can change: those
# contacts, every contact of their stored identities (a changed or dropped number can split
# one), and every contact of the stored identities of any contact with a row carrying one of
# their numbers now (a new number can join them). Closed: an unchanged contact outside shares
# no current number with one inside, or it would have been in the same stored identity, or
# have a row with a changed contact's new number.
_TOUCHED_CONTACTS = f"""
    WITH changed AS (
        SELECT DISTINCT contact_id FROM raw.crm_contacts WHERE _load_seq > $through
    ),
    changed_now AS (
        SELECT * FROM ({_CURRENT_CONTACTS}) WHERE contact_id IN (SELECT contact_id FROM changed)
    ),
    numbers AS (
        SELECT phone_e164 AS number FROM changed_now WHERE phone_e164 IS NOT NULL
        UNION
        SELECT mobile_phone_e164 FROM changed_now WHERE mobile_phone_e164 IS NOT NULL
    ),
    sharing AS (
        SELECT contact_id FROM raw.crm_contacts
        WHERE phone_e164 IN (SELECT number FROM numbers)
            OR mobile_phone_e164 IN (SELECT number FROM numbers)
    ),
    identities AS (
        SELECT identity_id FROM raw.crm_contact_identities
        WHERE contact_id IN (SELECT contact_id FROM changed)
            OR contact_id IN (SELECT contact_id FROM sharing)
    )
    SELECT contact_id FROM changed
    UNION
    SELECT contact_id FROM raw.crm_contact_identities
    WHERE identity_id IN (SELECT identity_id FROM identities)
"""


def update_contact_identities(con: duckdb.DuckDBPyConnection, through: int) -> int:
    """Recompute the identities of the contacts the rows loaded after `through` can touch
    (_TOUCHED_CONTACTS) and record what they were built from (one transaction). Returns the
    contacts recomputed. Equal to `rebuild_contact_identities` (tests/test_fixed_costs.py)."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _ringledger_touched_contacts AS {_TOUCHED_CONTACTS}",
        {"through": through},
    )
    try:
        contacts = con.execute(
            f"SELECT * FROM ({_CURRENT_CONTACTS}) "
            "WHERE contact_id IN (SELECT contact_id FROM _ringledger_touched_contacts)"
        ).fetchall()
        _store(con, merge_identities(contacts), "_ringledger_touched_contacts")
    finally:
        con.execute("DROP TABLE IF EXISTS _ringledger_touched_contacts")
    return len(contacts)


def rebuild_contact_identities(con: duckdb.DuckDBPyConnection) -> int:
    """Replace raw.crm_contact_identities and record what it was built from (one
    transaction). Returns its row count."""
    merged = merge_identities(con.execute(_CURRENT_CONTACTS).fetchall())
    _store(con, merged, None)
    return len(merged)


def _store(
    con: duckdb.DuckDBPyConnection, merged: list[tuple[str, str, int]], replaced: str | None
) -> None:
    """Write `merged` in place of the identities of the contacts listed in table `replaced`
    (all of them when None), and the state they were built from, in one transaction."""
    frame = pd.DataFrame(
        {
            "contact_id": pd.Series([m[0] for m in merged], dtype=object),
            "identity_id": pd.Series([m[1] for m in merged], dtype=object),
            "identity_size": np.array([m[2] for m in merged], dtype=np.int32),
        }
    )
    con.begin()
    try:
        if replaced is None:
            con.execute("DELETE FROM raw.crm_contact_identities")
        else:
            con.execute(
                "DELETE FROM raw.crm_contact_identities "
                f"WHERE contact_id IN (SELECT contact_id FROM {replaced})"
            )
        if merged:
            con.register("_ringledger_identities", frame)
            try:
                con.execute(
                    "INSERT INTO raw.crm_contact_identities BY NAME "
                    "SELECT * FROM _ringledger_identities"
                )
            finally:
                con.unregister("_ringledger_identities")
        write_meta(con, _STATE_NAME, _state(con))
        con.commit()
    except BaseException:
        con.rollback()
        raise
