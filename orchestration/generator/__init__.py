"""Deterministic sample exports for the landing directory (`ringledger generate`).

`generate()` writes, under `out_dir`:

- `telephony/calls_YYYY-MM-DD.csv`: one generic-format file per day; each also repeats the
  legs of the previous day's last hour (per site), so deduplication is exercised. With
  `telephony_format` `asterisk`: `telephony/Master_YYYY-MM-DD.csv` (cdr_csv); `twilio`:
  `telephony/twilio/<site>/calls_YYYY-MM-DD.csv` (see `formats.py`);
- `crm/{contacts,opportunities,activities,form_submissions}_YYYY-MM-DD.csv`: weekly exports
  (named after the export date: the week's Sunday, or the period's last day), each holding
  the records created or updated that week;
- `marketing/tracking_numbers.csv`: campaign windows of the tracking numbers.

The output depends only on the arguments: one `random.Random(seed)`, no wall clock (except
to refuse a period that reaches past today), and writing twice gives identical bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from orchestration.config import load_config

from .output import TelephonyFaults
from .simulate import Simulator
from .world import World, build_world

FAULTS: tuple[str, ...] = (
    "clock-skew",
    "timezone-error",
    "dirty-numbers",
    "tracking-overlap",
    "duplicate-file",
    "malformed-rows",
)
TELEPHONY_FORMATS = ("generic", "asterisk", "twilio")


def generate(
    out_dir: Path,
    days: int = 90,
    calls_per_day: int = 150,
    seed: int = 42,
    start: date = date(2025, 1, 6),
    telephony_format: str = "generic",
    inject: Sequence[str] = (),
    progress: bool = False,
) -> dict:
    """Write a period of realistic sample exports into `out_dir` and return a summary.

    Raises ValueError for a period that reaches past today, fewer than one day or call a
    day, an unknown fault or format.
    Existing files of the same names are overwritten; other files are left alone.
    """
    faults = _validate(days, calls_per_day, start, telephony_format, inject)
    out_dir = Path(out_dir)
    world = build_world(load_config(), start, days, overlap="tracking-overlap" in faults)
    telephony_faults = _telephony_faults(days, faults)
    period = [start + timedelta(days=k) for k in range(days)]
    simulator = Simulator(
        world, out_dir, period, calls_per_day, seed, faults, telephony_faults, telephony_format
    )
    with _progress_bar(days, progress) as advance:
        simulator.run(advance)
    counts = simulator.crm_writer.counts
    return {
        "out_dir": str(out_dir),
        "period": f"{period[0].isoformat()} to {period[-1].isoformat()}",
        "files": len(simulator.files),
        "legs": simulator.telephony.legs,
        "calls": simulator.pbx.calls,
        "contacts": counts["contacts"],
        "opportunities": counts["opportunities"],
        "activities": counts["activities"],
        "forms": counts["form_submissions"],
        "tracking_numbers": len(world.tracking),
        "faults": _fault_notes(faults, world, telephony_faults),
    }


def _validate(
    days: int, calls_per_day: int, start: date, telephony_format: str, inject: Sequence[str]
) -> frozenset[str]:
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if calls_per_day < 1:
        raise ValueError(f"calls_per_day must be at least 1, got {calls_per_day}")
    unknown = [name for name in inject if name not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault {unknown[0]!r}; known faults: {', '.join(FAULTS)}")
    if telephony_format not in TELEPHONY_FORMATS:
        raise ValueError(
            f"unknown telephony format {telephony_format!r}; "
            f"known formats: {', '.join(TELEPHONY_FORMATS)}"
        )
    last = start + timedelta(days=days - 1)
    if last >= date.today():
        raise ValueError(
            f"the period {start.isoformat()} to {last.isoformat()} reaches past today: "
            "its last day must be before today (exports hold no future calls); "
            "choose an earlier --start or fewer --days"
        )
    return frozenset(inject)


def _telephony_faults(days: int, faults: frozenset[str]) -> TelephonyFaults:
    """Pick distinct daily files for the file-level faults (where the period allows)."""
    wanted = []
    if "malformed-rows" in faults:
        wanted += [("malformed_day", 2), ("cp1252_day", 3)]
    if "duplicate-file" in faults:
        wanted.append(("duplicate_day", 1))
    chosen: dict[str, int] = {}
    for name, preferred in wanted:
        candidates = [preferred, *range(days)]
        free = [k for k in candidates if k < days and k not in chosen.values()]
        chosen[name] = free[0] if free else min(preferred, days - 1)
    return TelephonyFaults(**chosen)


def _fault_notes(faults: frozenset[str], world: World, telephony: TelephonyFaults) -> list[str]:
    """One line per fault applied (the telephony ones name their files), in FAULTS order."""
    notes = {
        "clock-skew": "CRM activity times +7 to +13 min after the PBX",
        "timezone-error": (
            f"CRM activity times are {world.sites[0].clock.zone.key} wall time labelled UTC"
        ),
        "dirty-numbers": "3% of inbound callers' numbers invalid",
    }
    for window in world.tracking:
        if window.injected:
            notes["tracking-overlap"] = (
                f"{window.number} also carries {window.campaign} from {window.valid_from} "
                f"to {window.valid_to}"
            )
    lines = [f"{name}: {text}" for name, text in notes.items() if name in faults]
    lines += telephony.applied
    return sorted(lines, key=lambda line: FAULTS.index(line.split(":")[0]))


@contextmanager
def _progress_bar(days: int, enabled: bool) -> Iterator[Callable[[date], None] | None]:
    """A rich progress bar on standard error, advanced once per generated day."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("generating days", total=days)

        def advance(day: date) -> None:
            bar.update(task, advance=1, description=f"generating {day.isoformat()}")

        yield advance


__all__ = ["FAULTS", "generate"]
