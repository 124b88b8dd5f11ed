"""One reader of the business rules for Python: the dbt seeds and dbt vars.

The rules live in `seeds/*.csv` and the `vars:` block of `dbt_project.yml`; a user's
`--config DIR` replaces seeds by file name and overrides vars from `DIR/vars.yml`. dbt reads
the same files (the CLI points dbt at the merged seeds and passes the vars), so Python never
restates a threshold.
"""

from __future__ import annotations

import os
import csv
import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import yaml

from orchestration.project import DBT_PROJECT_FILE, SEEDS_DIR

# The seed headers are part of the public contract (inputs-and-outputs.md, Configuration).
SEED_HEADERS: dict[str, list[str]] = {
    "sites": [
        "site",
        "time_zone",
        "default_region",
        "business_lines",
        "telephony_clock",
        "holiday_country",
        "holiday_subdivision",
    ],
    "business_hours": ["site", "day_of_week", "opens_at", "closes_at"],
    "holidays": ["site", "date", "name"],
    "ivr_intents": ["ivr_selection", "intent"],
    "queue_intents": ["queue", "intent"],
    "queue_owners": ["queue", "owner"],
    "callback_slas": ["intent", "sla_business_minutes"],
    "delay_buckets": ["delay_bucket", "lower_minutes", "upper_minutes", "sort_order"],
    "caller_blocklist": ["caller_number", "reason"],
    "unknown_caller_markers": ["marker"],
    "telephony_sources": [
        "pattern",
        "format",
        "source_system",
        "site",
        "inbound_contexts",
        "outbound_contexts",
        "columns",
    ],
}


# DuckDB's memory limit for the warehouse (ingest, gates, publish and dbt's connection; it
# spills to disk beyond it). DuckDB's own default, 80% of the machine, lets one big model
# take the memory other processes need. profiles.yml reads the same variable, which
# `resources.WarehouseResource.dbt_environment` always sets.
MEMORY_LIMIT_ENV = "RINGLEDGER_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "3GB"


def memory_limit() -> str:
    return os.environ.get(MEMORY_LIMIT_ENV, "").strip() or DEFAULT_MEMORY_LIMIT


class ConfigError(ValueError):
    """A configuration file the user must fix (exit code 2)."""


def default_vars() -> dict[str, Any]:
    with DBT_PROJECT_FILE.open() as handle:
        return dict(yaml.safe_load(handle)["vars"])


def read_seed_rows(path: Path, name: str) -> list[dict[str, str]]:
    """Read one seed CSV, checking its header against the contract."""
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    expected = SEED_HEADERS.get(name)
    if expected is not None and header != expected:
        missing = [c for c in expected if c not in header]
        extra = [c for c in header if c not in expected]
        what = f"missing column {missing[0]!r}" if missing else f"unexpected column {extra[0]!r}"
        if not missing and not extra:
            what = "columns out of order"
        raise ConfigError(
            f"{path}: wrong header ({what}); expected columns: {', '.join(expected)}"
        )
    return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]


@dataclass
class Config:
    """Seeds and vars in force for one run."""

    vars: dict[str, Any]
    seeds: dict[str, list[dict[str, str]]]
    seed_files: dict[str, Path] = field(default_factory=dict)
    config_dir: Path | None = None

    # -- derived values -------------------------------------------------------------
    @property
    def sites(self) -> list[dict[str, str]]:
        return self.seeds["sites"]

    @property
    def default_site(self) -> str:
        return self.sites[0]["site"]

    def site(self, name: str | None) -> dict[str, str] | None:
        for row in self.sites:
            if row["site"] == name:
                return row
        return None

    @property
    def crm_default_region(self) -> str:
        return self.vars.get("crm_default_region") or self.sites[0]["default_region"]

    @property
    def crm_timezone(self) -> str:
        return self.vars.get("crm_timezone") or "UTC"

    @property
    def unknown_markers(self) -> set[str]:
        return {r["marker"].strip().lower() for r in self.seeds["unknown_caller_markers"]}

    @property
    def business_lines(self) -> set[str]:
        lines: set[str] = set()
        for row in self.sites:
            lines.update(x for x in row["business_lines"].split() if x)
        return lines

    def dbt_vars(self) -> dict[str, Any]:
        """The vars passed to dbt (`--vars`), wilson_z derived from revenue_interval."""
        out = dict(self.vars)
        out["wilson_z"] = wilson_z(float(out["revenue_interval"]))
        return out

    def write_seed_dir(self, target: Path) -> Path:
        """Materialize the seeds in force into `target` (used as dbt's seed path)."""
        target.mkdir(parents=True, exist_ok=True)
        for stale in target.glob("*.csv"):
            stale.unlink()
        for name, source in self.seed_files.items():
            shutil.copyfile(source, target / f"{name}.csv")
        # seed properties (descriptions, column types) must sit beside the CSVs dbt reads
        shutil.copyfile(SEEDS_DIR / "_seeds.yml", target / "_seeds.yml")
        return target


def wilson_z(interval: float) -> float:
    """Exact two-sided normal quantile for a confidence `interval` (0.80 -> 1.2816)."""
    if not 0 < interval < 1:
        raise ConfigError(f"vars: revenue_interval must lie in (0, 1), got {interval}")
    return NormalDist().inv_cdf(0.5 + interval / 2)


def load_config(config_dir: Path | None = None) -> Config:
    """Default seeds and vars, overridden by a user's configuration directory."""
    vars_ = default_vars()
    seed_files = {p.stem: p for p in sorted(SEEDS_DIR.glob("*.csv"))}
    if config_dir is not None:
        config_dir = Path(config_dir)
        if not config_dir.is_dir():
            raise ConfigError(f"{config_dir}: configuration directory not found")
        for path in sorted(config_dir.glob("*.csv")):
            if path.stem not in SEED_HEADERS:
                raise ConfigError(
                    f"{path}: unknown seed {path.stem!r}; known seeds: {', '.join(SEED_HEADERS)}"
                )
            seed_files[path.stem] = path
        vars_file = config_dir / "vars.yml"
        if vars_file.exists():
            overrides = yaml.safe_load(vars_file.read_text()) or {}
            if not isinstance(overrides, dict):
                raise ConfigError(f"{vars_file}: expected flat `name: value` YAML")
            for key, value in overrides.items():
                if key not in vars_:
                    raise ConfigError(
                        f"{vars_file}: unknown var {key!r}; known vars: {', '.join(sorted(vars_))}"
                    )
                vars_[key] = value
    seeds = {name: read_seed_rows(path, name) for name, path in seed_files.items()}
    missing = [name for name in SEED_HEADERS if name not in seeds]
    if missing:
        raise ConfigError(f"seeds missing: {', '.join(missing)}")
    return Config(vars=vars_, seeds=seeds, seed_files=seed_files, config_dir=config_dir)
