"""Ingest: load a landing directory into DuckDB schema `raw`.

Contract: docs/architecture.md ("Raw tables") and inputs-and-outputs.md ("Landing
directory"). Public API:

    ingest_landing(con, landing_dir, config, hash_key, progress=False) -> IngestSummary
    resolve_hash_key(warehouse_path) -> bytes

Files: `telephony/**` (`*.csv`, `*.csv.gz`, `*.jsonl`, `*.jsonl.gz`, `queue_log*`), `crm/**` (`contacts*`, `opportunities*`,
`activities*`, `form_submissions*`), `marketing/**` (`tracking_numbers*`); `.csv` or
`.csv.gz`. Hidden files and directories (`.name`) are ignored; any other file there is
refused. Files of one run are processed in order of their path relative to the landing
directory, each new ledger row taking the next `load_seq` (continuing from the ledger), and
the file's rows carry it as `_load_seq`.

Ledger (`raw.load_ledger`, keyed by file name + sha256 of the bytes on disk):
- same name, same hash as the file's current `loaded` row: no-op, nothing recorded, not
  counted in rows (`IngestSummary.files_skipped_unchanged`);
- same hash as another file currently loaded (a re-delivery under a new name): a ledger row
  `loaded` with rows 0/0/0 and reason `duplicate of <file>`; its rows are not loaded twice.
  If the original is later corrected or retracted, the duplicate's content is not
  resurrected (it is the same content the user corrected or retracted);
- same name, new hash (a corrected file): the name's `loaded` row becomes `superseded`, its
  rows are deleted from the data table, the new rows are loaded. A header-only file
  therefore retracts; a header-only file under a new name loads zero rows (`loaded`);
- refused: a ledger row `refused` with the reason, no rows, the file's earlier load (if
  any) stays current. A file refused again for the same reason with the same hash adds no
  second ledger row, but is listed in `IngestSummary.files_refused` on every run;
- removing a file retracts nothing. Rejects of superseded loads stay in `raw.rejected_rows`
  (they belong to the superseded `load_id`).
For every ledger row, rows_read = rows_loaded + rows_rejected (data records after the
header; blank lines are not records). All writes of one file are one transaction.

Rows: read by header name (case-insensitive, trimmed; reordered columns fine, extra columns
ignored with a warning, missing optional columns read as ''). Within one file, rows with
the same id (telephony `call_id`; CRM the entity id; tracking numbers `tracking_number` +
`campaign` + `valid_from`) keep the last valid copy (`superseded within file` /
`duplicate within file` rejects); rows rejected for another reason never supersede. A row
with an empty id is rejected (`missing <id column>`), as is a leg with an empty
`started_at` or `ended_at`. Empty CRM timestamps load as NULL.

`raw.ingest_meta` (outside the dbt contract) stores a fingerprint of the hashing key; when
the key changes, every stored `*_key` column is recomputed before loading, so keys never
mix two hashing keys. It also records what the contact identities were built from
(identity.refresh_contact_identities rebuilds them only when the contacts changed).
`raw.file_hash_cache` keeps each landing file's size, mtime and content hash, so that an
unchanged file is not read again (loader._HashCache; the ledger stays keyed by content).
"""

from orchestration.ingest import asterisk, queue_log, twilio  # noqa: F401  (register formats)
from orchestration.ingest.hashkey import HASH_KEY_ENV, hash_key_path, resolve_hash_key
from orchestration.ingest.loader import FileOutcome, IngestSummary, discover, ingest_landing
from orchestration.ingest.schema import TABLES, create_raw_tables
from orchestration.ingest.telephony import TELEPHONY_FORMATS, detect_format

__all__ = [
    "HASH_KEY_ENV",
    "TABLES",
    "TELEPHONY_FORMATS",
    "FileOutcome",
    "IngestSummary",
    "create_raw_tables",
    "detect_format",
    "discover",
    "hash_key_path",
    "ingest_landing",
    "resolve_hash_key",
]
