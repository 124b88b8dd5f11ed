"""Writers of the landing files: daily telephony files with overlap, weekly CRM exports."""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

TELEPHONY_HEADER = (
    "call_id", "parent_call_id", "direction", "started_at", "answered_at", "ended_at",
    "from_number", "to_number", "status", "queue", "ivr_selection", "agent_id",
    "disposition", "site", "talk_seconds",
)  # fmt: skip
CRM_HEADERS: dict[str, tuple[str, ...]] = {
    "contacts": (
        "contact_id", "phone", "mobile_phone", "email", "created_at", "updated_at",
        "lifecycle", "owner",
    ),
    "opportunities": (
        "opportunity_id", "contact_id", "created_at", "stage", "amount", "closed_at",
        "is_won", "is_closed",
    ),
    "activities": (
        "activity_id", "contact_id", "activity_type", "logged_at", "phone", "pbx_call_id",
        "disposition", "duration_seconds",
    ),
    "form_submissions": (
        "submission_id", "submitted_at", "phone", "email", "form_type", "source", "campaign",
    ),
}  # fmt: skip
TRACKING_HEADER = (
    "tracking_number", "campaign", "source", "channel", "default_intent", "valid_from", "valid_to",
)  # fmt: skip
OVERLAP = timedelta(hours=1)


def csv_line(fields: Sequence[str]) -> str:
    """One CSV record (minimal quoting, like `csv.QUOTE_MINIMAL`), without line end."""
    out = []
    for value in fields:
        if "," in value or '"' in value or "\n" in value or "\r" in value:
            value = '"' + value.replace('"', '""') + '"'
        out.append(value)
    return ",".join(out)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """UTF-8, LF line ends, header first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [csv_line(header)] + [csv_line(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="")


@dataclass(frozen=True)
class TelephonyLayout:
    """How a telephony format lays out its daily files.

    `header`: the first line of every file (None: header-less, as Asterisk `cdr_csv`, and then
    a day without legs writes no file); `path`: the file of a local date (and of a site, when
    `per_site`) relative to `telephony/`; `per_site`: one file per site and day (for formats
    without a site column: the `telephony_sources` row of its folder gives the site).
    """

    header: tuple[str, ...] | None
    path: Callable[[date, str], str]
    per_site: bool = False


GENERIC_LAYOUT = TelephonyLayout(
    TELEPHONY_HEADER, lambda day, _site: f"calls_{day.isoformat()}.csv"
)


@dataclass
class TelephonyFaults:
    """Which daily files the telephony faults touch (indexes into the period's days)."""

    malformed_day: int | None = None
    cp1252_day: int | None = None
    duplicate_day: int | None = None
    malformed_lines: Callable[[date], tuple[list[str], str]] | None = None
    applied: list[str] = field(default_factory=list)


# A queued leg: (started, call_id, site index, CSV line); tuples sort fast.
_Row = tuple[datetime, str, int, str]


class TelephonyWriter:
    """Daily telephony files; each repeats the previous day's last hour of legs per site.

    File-level faults (malformed rows, CP1252, a resent copy) touch the file of the first
    site when the layout writes one file per site.
    """

    def __init__(
        self,
        root: Path,
        days: Sequence[date],
        faults: TelephonyFaults,
        layout: TelephonyLayout = GENERIC_LAYOUT,
        sites: Sequence[str] = (),
    ) -> None:
        self.dir = root / "telephony"
        self.days = list(days)
        self.faults = faults
        self.layout = layout
        self.sites = list(sites)
        self._rows: dict[date, list[_Row]] = defaultdict(list)
        self._carry: list[_Row] = []
        self._cp1252_done = False
        self.files: list[Path] = []
        self.legs = 0

    def add(self, day: date, started: datetime, call_id: str, site: int, line: str) -> None:
        """Queue one leg for the file of its local date."""
        self._rows[day].append((started, call_id, site, line))
        self.legs += 1

    def flush(self, index: int) -> None:
        """Write the file(s) of day `index` (all of its legs are known by now)."""
        day = self.days[index]
        rows = sorted(self._rows.pop(day, []))
        layout = self.layout
        header = [csv_line(layout.header)] if layout.header is not None else []
        if layout.per_site:
            groups = [
                (
                    name,
                    [row for row in (*self._carry, *rows) if row[2] == site],
                )
                for site, name in enumerate(self.sites)
            ]
        else:
            groups = [(self.sites[0] if self.sites else "", [*self._carry, *rows])]
        faulted: Path | None = None
        for position, (site_name, legs) in enumerate(groups):
            path = self.dir / layout.path(day, site_name)
            lines = header + [row[3] for row in legs]
            if self._write(path, index, lines, faultable=position == 0):
                faulted = path if position == 0 else faulted
        self._carry = self._last_hour(rows)
        if index == self.faults.duplicate_day and faulted is not None:
            copy = faulted.with_name(f"{faulted.stem}_resent{faulted.suffix}")
            shutil.copyfile(faulted, copy)
            self.files.append(copy)
            self.faults.applied.append(f"duplicate-file: {copy.name} = {faulted.name}")

    def _write(self, path: Path, index: int, lines: list[str], faultable: bool = True) -> bool:
        """Write one file; False when there was nothing to write (a header-less empty day)."""
        truncated = False
        malformed = (
            faultable
            and index == self.faults.malformed_day
            and self.faults.malformed_lines is not None
        )
        if malformed:
            bad, cut = self.faults.malformed_lines(self.days[index])  # type: ignore[misc]
            lines = [*lines, *bad, cut]
            truncated = True  # the last line has no line end
            self.faults.applied.append(f"malformed-rows: {len(bad) + 1} bad rows in {path.name}")
        if not lines:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        encoding, newline = "utf-8", "\n"
        if faultable and self._cp1252_wanted(index, lines):
            encoding, newline = "cp1252", "\r\n"
            self._cp1252_done = True
            self.faults.applied.append(f"malformed-rows: {path.name} in CP1252 with CRLF")
        text = newline.join(lines) + ("" if truncated else newline)
        path.write_bytes(text.encode(encoding))
        self.files.append(path)
        return True

    def _cp1252_wanted(self, index: int, lines: list[str]) -> bool:
        """The CP1252 file: the first from the chosen day on with an accented name in it
        (the last day if none has one), never the file with the malformed rows."""
        chosen, last = self.faults.cp1252_day, len(self.days) - 1
        if chosen is None or self._cp1252_done or index < chosen:
            return False
        if index == self.faults.malformed_day and index < last:
            return False
        return index == last or any(not line.isascii() for line in lines)

    @staticmethod
    def _last_hour(rows: list[_Row]) -> list[_Row]:
        """Legs within an hour of each site's last leg of the day."""
        latest: dict[int, datetime] = {}
        for started, _, site, _ in rows:
            latest[site] = max(latest.get(site, started), started)
        return [row for row in rows if row[0] >= latest[row[2]] - OVERLAP]


class CrmWriter:
    """Weekly CRM exports: each record lands in the export of the week it was last touched.

    Files are named after the export date (the week's Sunday, or the period's last day).
    A week is written once no record can reach it any more (`flush_before`).
    """

    def __init__(self, root: Path, first_day: date, last_day: date) -> None:
        self.dir = root / "crm"
        self.monday = first_day - timedelta(days=first_day.weekday())
        self.last_day = last_day
        self.last_bucket = (last_day - self.monday).days // 7
        self._open_from = 0
        self._rows: dict[int, dict[str, list[tuple[datetime, list[str]]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self._positions: dict[tuple[int, str, str], int] = {}
        self.counts: dict[str, int] = {name: 0 for name in CRM_HEADERS}
        self.files: list[Path] = []

    def export_date(self, bucket: int) -> date:
        return min(self.monday + timedelta(days=7 * bucket + 6), self.last_day)

    def bucket(self, when: datetime) -> int:
        """The export a record touched at `when` (UTC) goes to (never one already written)."""
        bucket = (when.date() - self.monday).days // 7
        return min(max(bucket, self._open_from), self.last_bucket)

    def add(self, entity: str, when: datetime, row: list[str], keyed: bool = False) -> None:
        """Queue one record, touched at `when` (UTC); `keyed` records can be `update`d."""
        bucket = self.bucket(when)
        records = self._rows[bucket][entity]
        if keyed:
            self._positions[(bucket, entity, row[0])] = len(records)
        records.append((when, row))
        self.counts[entity] += 1

    def update(self, entity: str, when: datetime, row: list[str]) -> None:
        """A newer version of a keyed record: replaced in place when both fall in the same
        export (one row per id and file), else added to the later export."""
        bucket = self.bucket(when)
        position = self._positions.get((bucket, entity, row[0]))
        records = self._rows[bucket][entity]
        if position is None:
            self._positions[(bucket, entity, row[0])] = len(records)
            records.append((when, row))
        else:
            records[position] = (records[position][0], row)

    def flush_before(self, day: date) -> None:
        """Write every week whose export date lies before `day`."""
        while self._open_from <= self.last_bucket and self.export_date(self._open_from) < day:
            self._write_bucket(self._open_from)
            self._open_from += 1

    def close(self) -> None:
        """Write the remaining weeks; an entity with no record gets a header-only file."""
        self.flush_before(self.last_day + timedelta(days=1))
        written = {path.name.rsplit("_", 1)[0] for path in self.files}
        for entity, header in CRM_HEADERS.items():
            if entity not in written:
                path = self.dir / f"{entity}_{self.last_day.isoformat()}.csv"
                write_csv(path, header, [])
                self.files.append(path)

    def _write_bucket(self, bucket: int) -> None:
        entities = self._rows.pop(bucket, {})
        self._positions = {key: pos for key, pos in self._positions.items() if key[0] != bucket}
        stamp = self.export_date(bucket).isoformat()
        for entity, header in CRM_HEADERS.items():
            records = entities.get(entity)
            if not records:
                continue
            records.sort(key=lambda item: (item[0], item[1][0]))
            path = self.dir / f"{entity}_{stamp}.csv"
            write_csv(path, header, [row for _, row in records])
            self.files.append(path)
