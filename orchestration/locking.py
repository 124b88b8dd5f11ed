"""One writer per warehouse: an exclusive, non-blocking lock file beside it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class WarehouseBusy(RuntimeError):
    """Another run holds the warehouse (exit code 5)."""


class WarehouseLock:
    def __init__(self, warehouse_path: Path):
        self.path = warehouse_path.parent / f"{warehouse_path.name}.lock"
        self._fd: int | None = None

    def __enter__(self) -> "WarehouseLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise WarehouseBusy(
                f"another ringledger run (pid {holder}) holds {self.path.parent / self.path.stem}; "
                "wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
