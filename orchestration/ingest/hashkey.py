"""The key of the keyed hashes (`*_key` columns, `caller_key`): never a constant.

`RINGLEDGER_HASH_KEY` wins; else `<warehouse stem>.hashkey` beside the warehouse file,
generated on first use (64 hex characters from `secrets`, mode 0600) and read back on every
later run. The key file must never be committed or published.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

HASH_KEY_ENV = "RINGLEDGER_HASH_KEY"


def hash_key_path(warehouse_path: Path) -> Path:
    warehouse_path = Path(warehouse_path)
    return warehouse_path.with_name(f"{warehouse_path.stem}.hashkey")


def resolve_hash_key(warehouse_path: Path) -> bytes:
    """The hashing key: the env var, else the key file beside the warehouse (created if absent)."""
    from_env = os.environ.get(HASH_KEY_ENV, "").strip()
    if from_env:
        return from_env.encode("utf-8")
    path = hash_key_path(warehouse_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="utf-8").strip()
        if not key:
            raise ValueError(
                f"{path}: hash key file is empty; restore it, or remove it to generate a new "
                f"key (every stored key is then recomputed on the next ingest)"
            ) from None
        return key.encode("utf-8")
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)  # exactly owner read/write, whatever the umask
    return key.encode("utf-8")
