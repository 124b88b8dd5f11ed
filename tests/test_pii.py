"""Personal data: callers' numbers never reach the published marts file.

- `caller_key` is an HMAC-SHA256 of the caller's E.164 number under the configured key
  (`RINGLEDGER_HASH_KEY`, else `<warehouse stem>.hashkey` generated beside the warehouse).
- A scanner reads every value of every column of every table of the published file (and
  the `.quality.json` beside it) and fails on anything that looks like a phone number other
  than the business's own lines (the `sites` seed's `business_lines` and the tracking numbers).
  The scanner itself is tested on a copy of the file with numbers injected.
- The documented commands bind the Dagster webserver to the loopback interface.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import shutil
import stat
import subprocess
from pathlib import Path

import duckdb
import phonenumbers
import pytest

from orchestration import project
from orchestration.config import load_config
from orchestration.ingest import HASH_KEY_ENV, hash_key_path, ingest_landing, resolve_hash_key
from orchestration.publish import quality_json_path

REPO = Path(__file__).resolve().parents[1]
TEST_KEY = b"test-key-not-secret"  # conftest.run_isolated's key
SKIPPED_TYPES = ("TIMESTAMP", "DATE", "TIME", "BOOLEAN", "INTERVAL", "UUID")
NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UBIGINT", "DOUBLE",
                 "FLOAT", "DECIMAL", "REAL")  # fmt: skip
# Column names that would carry a raw number (only tracking_number, a business line, may).
NUMBER_COLUMN = re.compile(r"(phone|_e164$|^from_number|^to_number|caller_number|^number$)")


# -- the scanner --------------------------------------------------------------------------


def _regions() -> list[str]:
    config = load_config()
    regions = {row["default_region"].strip().upper() for row in config.sites}
    regions.add(config.crm_default_region.strip().upper())
    return sorted(regions)


def business_lines(warehouse: Path | None = None) -> set[str]:
    """The business's own numbers (E.164): sites' business lines and tracking numbers."""
    config = load_config()
    lines = {n for row in config.sites for n in (row.get("business_lines") or "").split()}
    if warehouse is not None:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            lines |= {
                r[0]
                for r in con.execute(
                    "select distinct tracking_number_e164 from raw.marketing_tracking_numbers "
                    "where tracking_number_e164 is not null"
                ).fetchall()
            }
    return lines


def numbers_in_text(text: str, regions: list[str]) -> set[str]:
    """E.164 of every valid phone number written anywhere in `text`."""
    found: set[str] = set()
    for region in regions:
        for match in phonenumbers.PhoneNumberMatcher(text, region, phonenumbers.Leniency.VALID):
            found.add(phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164))
    return found


def numbers_in_value(value: float, regions: list[str]) -> set[str]:
    """A number column holding a phone number as an integer (or an integral double)."""
    if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
        return set()
    digits = str(abs(int(value)))
    if len(digits) < 7:
        return set()
    found: set[str] = set()
    for candidate in (digits, "+" + digits):
        for region in regions:
            try:
                number = phonenumbers.parse(candidate, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                found.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return found


def scan_duckdb(path: Path, allowed: set[str]) -> list[tuple[str, str, str]]:
    """(table.column, value, E.164) of every phone-number-looking value not in `allowed`."""
    regions = _regions()
    leaks: list[tuple[str, str, str]] = []
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name, data_type "
            "from information_schema.columns order by all"
        ).fetchall()
        assert columns, f"{path}: no tables"
        for schema, table, column, data_type in columns:
            where = f"{schema}.{table}.{column}"
            if NUMBER_COLUMN.search(column.lower()) and column.lower() != "tracking_number":
                leaks.append((where, "(column name)", column))
            if data_type.upper().startswith(SKIPPED_TYPES):
                continue
            numeric = data_type.upper().startswith(NUMERIC_TYPES)
            expr = f'"{column}"' if numeric else f'cast("{column}" as varchar)'
            values = con.execute(
                f'select distinct {expr} from "{schema}"."{table}" where "{column}" is not null'
            ).fetchall()
            for (value,) in values:
                if numeric:
                    hits = numbers_in_value(float(value) if not isinstance(value, int) else value,
                                            regions)
                else:
                    hits = numbers_in_text(str(value), regions)
                leaks += [(where, str(value), e164) for e164 in sorted(hits - allowed)]
    return leaks


def scan_json(path: Path, allowed: set[str]) -> list[tuple[str, str, str]]:
    regions = _regions()
    leaks = []

    def walk(node, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")
        elif isinstance(node, str):
            leaks.extend((where, node, n) for n in sorted(numbers_in_text(node, regions) - allowed))
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            leaks.extend((where, str(node), n) for n in sorted(numbers_in_value(node, regions) - allowed))

    walk(json.loads(path.read_text()), path.name)
    return leaks


# -- the published file -------------------------------------------------------------------


def test_published_marts_hold_no_phone_number(pipeline_run):
    allowed = business_lines(pipeline_run.warehouse)
    assert allowed
    leaks = scan_duckdb(pipeline_run.marts, allowed)
    assert leaks == [], leaks[:20]
    quality = quality_json_path(pipeline_run.marts)
    assert quality.exists()
    assert scan_json(quality, allowed) == []
    # and the published file holds the marts schema only (no raw, no restricted worklist)
    with duckdb.connect(str(pipeline_run.marts), read_only=True) as con:
        schemas = {r[0] for r in con.execute("select distinct table_schema from information_schema.tables").fetchall()}
    assert schemas == {"marts"}


def test_the_warehouse_does_hold_numbers(pipeline_run):
    """Control: the same scanner finds the callers' numbers where they are allowed to be."""
    allowed = business_lines(pipeline_run.warehouse)
    with duckdb.connect(str(pipeline_run.warehouse), read_only=True) as con:
        con.execute("select 1")
        callers = {
            r[0]
            for r in con.execute(
                "select distinct from_number_e164 from raw.telephony_legs "
                "where direction_normalized = 'inbound' and from_number_is_valid limit 50"
            ).fetchall()
        }
    assert callers and not (callers & allowed)


def test_scanner_catches_an_injected_number(pipeline_run, tmp_path):
    allowed = business_lines(pipeline_run.warehouse)
    copy = tmp_path / "leaky.duckdb"
    shutil.copyfile(pipeline_run.marts, copy)
    business = min(allowed)
    with duckdb.connect(str(copy)) as con:
        (rows,) = con.execute("select count(*) from marts.fct_calls").fetchone()
        assert rows > 0
        # a caller's number in free text of an existing mart row
        con.execute(
            "update marts.fct_calls set queue = 'sales, caller (917) 555-0142' "
            "where call_key = (select min(call_key) from marts.fct_calls)"
        )
        # stored as an integer, and as an E.164 string in a new table
        con.execute(
            "create table marts.leak as select 13125550187::bigint as n, "
            "'+14155550199' as e164, ? as own_line, 71.53231405 as minutes",
            [business],
        )
    leaks = scan_duckdb(copy, allowed)
    found = {(where, e164) for where, _, e164 in leaks}
    assert found == {
        ("marts.fct_calls.queue", "+19175550142"),
        ("marts.leak.n", "+13125550187"),
        ("marts.leak.e164", "+14155550199"),
    }, leaks
    # a raw number column is caught by its name too
    with duckdb.connect(str(copy)) as con:
        con.execute("create table marts.contacts as select '' as caller_phone")
    assert any(value == "(column name)" for _, value, _ in scan_duckdb(copy, allowed))


def test_scanner_on_text_and_json(tmp_path):
    regions = ["US"]
    assert numbers_in_text("call +1 212-555-0142 now", regions) == {"+12125550142"}
    assert numbers_in_text("2125550142", regions) == {"+12125550142"}
    assert numbers_in_text("6e2e6e3680056c2ee9780392874b7020", regions) == set()  # a hash
    assert numbers_in_text("2025-01-06 09:00:00", regions) == set()
    assert numbers_in_value(12125550142, regions) == {"+12125550142"}
    assert numbers_in_value(71.53231405, regions) == set()
    quality = tmp_path / "q.json"
    quality.write_text(json.dumps({"gates": [{"detail": "example +12125550142", "n": 3}]}))
    assert [n for _, _, n in scan_json(quality, set())] == ["+12125550142"]
    assert scan_json(quality, {"+12125550142"}) == []


# -- the keyed hash -----------------------------------------------------------------------


def test_caller_key_is_hmac_with_the_configured_key(pipeline_run):
    with duckdb.connect(str(pipeline_run.marts), read_only=True) as con:
        marts_keys = {
            r[0]
            for r in con.execute(
                "select distinct caller_key from marts.fct_calls where caller_key is not null"
            ).fetchall()
        }
    with duckdb.connect(str(pipeline_run.warehouse), read_only=True) as con:
        numbers = con.execute(
            "select from_number, from_number_e164 from raw.telephony_legs "
            "union select to_number, to_number_e164 from raw.telephony_legs"
        ).fetchall()
    assert marts_keys
    keyed = {
        hmac.new(TEST_KEY, (e164 or raw.strip()).encode(), hashlib.sha256).hexdigest()
        for raw, e164 in numbers
    }
    unkeyed = {hashlib.sha256((e164 or raw.strip()).encode()).hexdigest() for raw, e164 in numbers}
    assert marts_keys <= keyed  # every caller_key is HMAC(configured key, number)
    assert not marts_keys & unkeyed  # and never a plain (dictionary-attackable) hash
    for key in marts_keys:
        assert re.fullmatch(r"[0-9a-f]{64}", key)


def _ingest_keys(tmp_path: Path, name: str, key: bytes) -> list[tuple]:
    landing = tmp_path / "landing"
    if not landing.exists():
        (landing / "telephony").mkdir(parents=True)
        (landing / "telephony" / "calls.csv").write_text(
            "call_id,direction,started_at,ended_at,from_number,to_number,status\n"
            "c1,inbound,2025-01-06 09:00:00,2025-01-06 09:01:00,(917) 555-0142,+12125550100,busy\n"
            "c2,inbound,2025-01-06 09:00:00,2025-01-06 09:01:00,+14155550199,+12125550100,busy\n"
        )
    with duckdb.connect(str(tmp_path / f"{name}.duckdb")) as con:
        ingest_landing(con, landing, load_config(), key)
        return con.execute(
            "select call_id, from_number_key from raw.telephony_legs order by call_id"
        ).fetchall()


def test_different_keys_give_different_caller_keys(tmp_path):
    first = _ingest_keys(tmp_path, "a", b"key-one")
    again = _ingest_keys(tmp_path, "b", b"key-one")
    other = _ingest_keys(tmp_path, "c", b"key-two")
    assert first == again  # same key, same keys: stable across runs and warehouses
    assert len(first) == 2
    for (_, a), (_, c) in zip(first, other, strict=True):
        assert a != c


def test_key_from_environment_else_generated_file(tmp_path, monkeypatch):
    warehouse = tmp_path / "deploy" / "warehouse.duckdb"
    monkeypatch.setenv(HASH_KEY_ENV, "  from-the-environment  ")
    assert resolve_hash_key(warehouse) == b"from-the-environment"
    assert not hash_key_path(warehouse).exists()  # the environment wins: no file written

    monkeypatch.delenv(HASH_KEY_ENV)
    key = resolve_hash_key(warehouse)
    path = hash_key_path(warehouse)
    assert path == tmp_path / "deploy" / "warehouse.hashkey"  # beside the warehouse
    assert re.fullmatch(rb"[0-9a-f]{64}", key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolve_hash_key(warehouse) == key  # read back on every later run
    # generated, never a constant: another deployment gets another key
    assert resolve_hash_key(tmp_path / "other" / "warehouse.duckdb") != key
    # an empty key file is an error, never silently a new key
    path.write_text("\n")
    with pytest.raises(ValueError, match="hash key file is empty"):
        resolve_hash_key(warehouse)


def test_default_key_file_is_never_committed():
    """With the default warehouse (data/ in the checkout) the key file is git-ignored."""
    default = hash_key_path(project.REPO_ROOT / "data" / "warehouse.duckdb")
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    for path in (default, REPO / "anywhere" / "warehouse.hashkey"):
        completed = subprocess.run(
            ["git", "check-ignore", "--no-index", "-q", str(path.relative_to(REPO))],
            cwd=REPO,
            capture_output=True,
            check=False,
        )
        assert completed.returncode == 0, f"{path} is not git-ignored"
    # and no key file is tracked
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert not [f for f in tracked.splitlines() if f.endswith(".hashkey")]


# -- the Dagster webserver ----------------------------------------------------------------

DOCS = ["README.md", "Makefile", "docs/operations.md", "docs/architecture.md"]
_DAGSTER_UI = re.compile(r"\bdagster(?:-webserver|\s+dev)\b[^\n`]*")
_HOST = re.compile(r"(?:-h|--host)[ =](\S+)")


def _command_lines(name: str, text: str) -> list[str]:
    """Makefile recipes, fenced code blocks and inline code spans of a document."""
    if name == "Makefile":
        return [line for line in text.splitlines() if line.startswith("\t")]
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            lines.append(line)
        else:
            lines += re.findall(r"`([^`]+)`", line)
    return lines


def test_dagster_webserver_binds_to_loopback():
    commands = []
    for name in DOCS:
        path = REPO / name
        if path.exists():
            for line in _command_lines(name, path.read_text()):
                commands += [(name, m.group(0)) for m in _DAGSTER_UI.finditer(line)]
    assert any(name == "Makefile" for name, _ in commands), commands
    for name, command in commands:
        host = _HOST.search(command)
        if host is None:
            # a bare `dagster dev` falls back to the webserver's default host: loopback
            from dagster_webserver.cli import DEFAULT_WEBSERVER_HOST

            assert DEFAULT_WEBSERVER_HOST == "127.0.0.1", (name, command)
        else:
            assert host.group(1) == "127.0.0.1", (name, command)
    makefile = [c for n, c in commands if n == "Makefile"]
    assert all(_HOST.search(c) and _HOST.search(c).group(1) == "127.0.0.1" for c in makefile)
