"""The `holidays` seed: public holidays per site from the `holidays` package."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import holidays as holidays_lib

from orchestration.config import SEED_HEADERS, Config


def default_years(today: date | None = None) -> range:
    """Two years before this year to one after."""
    year = (today or date.today()).year
    return range(year - 2, year + 2)


def holiday_rows(config: Config, years: range) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for site in config.sites:
        country = site["holiday_country"]
        if not country:
            continue
        calendar = holidays_lib.country_holidays(
            country, subdiv=site["holiday_subdivision"] or None, years=list(years)
        )
        for day, name in sorted(calendar.items()):
            rows.append({"site": site["site"], "date": day.isoformat(), "name": name})
    return rows


def write_holidays_seed(config: Config, years: range, path: Path) -> int:
    rows = holiday_rows(config, years)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=SEED_HEADERS["holidays"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
