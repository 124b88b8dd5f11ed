"""Caller identity: CRM contacts sharing a normalized number, merged transitively.

Rebuilt from the current contacts (the newest copy of each contact_id: highest `_load_seq`,
then latest line) after every ingest that changed them (`refresh_contact_identities`).
Survivor of a group = earliest `created_at_utc` (unknown creation time sorts last), ties by
contact_id; contacts without a valid number are an identity of their own.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

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


def refresh_contact_identities(con: duckdb.DuckDBPyConnection) -> bool:
    """Rebuild raw.crm_contact_identities unless it was built from the contacts as they are
    (the contacts did not change since; see _STATE). True when rebuilt."""
    stored = con.execute(
        "SELECT value FROM raw.ingest_meta WHERE name = ?", [_STATE_NAME]
    ).fetchall()
    if stored and stored[0][0] == _state(con):
        return False
    rebuild_contact_identities(con)
    return True


def rebuild_contact_identities(con: duckdb.DuckDBPyConnection) -> int:
    """Replace raw.crm_contact_identities and record what it was built from (one
    transaction). Returns its row count."""
    contacts = con.execute(_CURRENT_CONTACTS).fetchall()
    merged = merge_identities(contacts)
    frame = pd.DataFrame(
        {
            "contact_id": pd.Series([m[0] for m in merged], dtype=object),
            "identity_id": pd.Series([m[1] for m in merged], dtype=object),
            "identity_size": np.array([m[2] for m in merged], dtype=np.int32),
        }
    )
    con.begin()
    try:
        con.execute("DELETE FROM raw.crm_contact_identities")
        if merged:
            con.register("_ringledger_identities", frame)
            try:
                con.execute(
                    "INSERT INTO raw.crm_contact_identities BY NAME "
                    "SELECT * FROM _ringledger_identities"
                )
            finally:
                con.unregister("_ringledger_identities")
        con.execute("DELETE FROM raw.ingest_meta WHERE name = ?", [_STATE_NAME])
        con.execute("INSERT INTO raw.ingest_meta VALUES (?, ?)", [_STATE_NAME, _state(con)])
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return len(merged)
