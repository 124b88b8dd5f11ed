"""The columnar path (orchestration/ingest/fastpath.py, phonemap.py) loads exactly what the row
readers load: same rows, rejects and ledger, table by table, on generated data (every fault
the generator injects) and on hand-written edge cases; files it cannot be sure of go to the
row readers."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import duckdb
import pytest

from orchestration.config import load_config
from orchestration.generator import FAULTS
from orchestration.ingest import ingest_landing
from orchestration.ingest.normalize import PhoneNormalizer
from orchestration.ingest import phonemap
from orchestration.ingest.phonemap import STORED_KEYS, STORED_STAMP, build_phone_map
from orchestration.ingest.schema import TABLES
from conftest import generate_sample
from ingest_helpers import KEY, put

# Columns that differ between two loads of the same files by design.
VOLATILE = {"_load_id", "load_id", "loaded_at"}
HEADER = (
    "call_id,parent_call_id,direction,started_at,answered_at,ended_at,from_number,to_number,"
    "status,queue,ivr_selection,agent_id,disposition,site,talk_seconds\n"
)


def _load_both(tmp_path, landing):
    """Ingest `landing` with and without the columnar path; both warehouses, the summaries."""
    config = load_config()
    cons, summaries = {}, {}
    for columnar in (True, False):
        con = duckdb.connect(str(tmp_path / f"w_{columnar}.duckdb"))
        summaries[columnar] = ingest_landing(con, landing, config, KEY, columnar=columnar)
        cons[columnar] = con
    return cons, summaries


def _assert_same_raw(cons) -> None:
    """Every raw table equal, but the columnar path's stored phone keys (a cache of it alone)."""
    for table, columns in TABLES.items():
        if table == STORED_KEYS.removeprefix("raw."):
            continue
        names = ", ".join(name for name, _ in columns if name not in VOLATILE)
        where = f" WHERE name <> '{STORED_STAMP}'" if table == "ingest_meta" else ""
        rows = {
            columnar: sorted(
                map(repr, con.execute(f"SELECT {names} FROM raw.{table}{where}").fetchall())
            )
            for columnar, con in cons.items()
        }
        assert rows[True] == rows[False], table


def _columnar_files(summary) -> set[str]:
    return {f.file for f in summary.files if f.columnar}


def test_generated_data_loads_identically(tmp_path):
    landing = tmp_path / "landing"
    generate_sample(landing, days=6, calls_per_day=60, inject=list(FAULTS))
    cons, summaries = _load_both(tmp_path, landing)
    _assert_same_raw(cons)
    columnar = _columnar_files(summaries[True])
    # the clean daily files took the columnar path, the malformed ones did not
    assert any(f.startswith("telephony/") for f in columnar)
    assert any(f.startswith("crm/contacts") for f in columnar)
    assert not _columnar_files(summaries[False])
    rejected = {f.file for f in summaries[True].files if f.rows_rejected}
    assert rejected and not rejected & columnar
    assert summaries[True].rows_loaded == summaries[False].rows_loaded


def test_chunks_hand_python_each_phone_key_once(tmp_path, monkeypatch):
    """Many small chunks: each maps only the phone keys no earlier chunk mapped (the seen-keys
    table), and the result still equals the row readers'."""
    from orchestration.ingest import fastpath

    monkeypatch.setattr(fastpath, "CHUNK_ROWS", 150)
    primed: dict[int, list[list[tuple[str, str]]]] = {}  # per normalizer (one per ingest)
    prime_keys = PhoneNormalizer.prime_keys

    def recording(self, keys, texts=()):
        keys = list(keys)
        primed.setdefault(id(self), []).append(keys)
        return prime_keys(self, keys, texts)

    monkeypatch.setattr(PhoneNormalizer, "prime_keys", recording)
    landing = tmp_path / "landing"
    generate_sample(landing, days=6, calls_per_day=60)
    cons, summaries = _load_both(tmp_path, landing)
    _assert_same_raw(cons)
    assert max(len(calls) for calls in primed.values()) > 5
    for calls in primed.values():
        every = [key for keys in calls for key in keys]
        assert len(every) == len(set(every)), "a phone key went to Python twice"


def test_later_ingests_map_only_the_phone_keys_no_earlier_ingest_mapped(tmp_path, monkeypatch):
    """raw.phone_keys keeps the keys an ingest mapped: the next ingest of the warehouse sends
    only its new keys to phonenumbers, and its rows equal the row readers'. The stored keys
    are not used when phonenumbers or the hashing key changed."""
    primed: list[set[str]] = []
    prime_keys = PhoneNormalizer.prime_keys

    def recording(self, keys, texts=()):
        keys = list(keys)
        primed.append({key for key, _ in keys})
        return prime_keys(self, keys, texts)

    monkeypatch.setattr(PhoneNormalizer, "prime_keys", recording)
    config = load_config()
    landing = tmp_path / "landing"
    con = duckdb.connect(str(tmp_path / "w.duckdb"))

    def ingest_file(name: str, numbers: list[str], key: bytes = KEY) -> set[str]:
        rows = [
            {"id": f"{name}{i}", "start": "2025-03-03T10:00:00Z", "end": "2025-03-03T10:01:00Z",
             "frm": number}
            for i, number in enumerate(numbers)
        ]  # fmt: skip
        path = put(landing, f"telephony/{name}.csv", _legs(*rows))
        written = time.time_ns() - 60 * 10**9  # a minute old: later ingests skip it unread
        os.utime(path, ns=(written, written))
        primed.clear()
        summary = ingest_landing(con, landing, config, key)
        assert f"telephony/{name}.csv" in _columnar_files(summary)
        return set().union(*primed)

    first = ingest_file("first", ["(212) 555-0101", "212.555.0102", "555-0100"])
    assert {"2125550101", "2125550102", "5550100", "+12125550100"} <= first
    # a known number in another spelling has the same key; only the new one is parsed
    assert ingest_file("second", ["212-555-0101", "+1 212 555 0103"]) == {"+12125550103"}
    # another phonenumbers: every key of the new file is parsed again, and stored anew
    monkeypatch.setattr(phonemap.phonenumbers, "__version__", "0.0-test")
    assert ingest_file("third", ["(212) 555-0102"]) == {"2125550102", "+12125550100"}
    stored = {k for (k,) in con.execute(f"SELECT canon FROM {STORED_KEYS}").fetchall()}
    assert stored == {"2125550102", "+12125550100"}
    assert ingest_file("fourth", ["(212) 555-0102"]) == set()
    # another hashing key: the stored HMACs are not reused
    assert ingest_file("fifth", ["(212) 555-0102"], key=b"another-key") == {
        "2125550102", "+12125550100"
    }  # fmt: skip
    # the rows equal the row readers' (same E.164 and keys, under the last key)
    reference = duckdb.connect(str(tmp_path / "rows.duckdb"))
    ingest_landing(reference, landing, config, b"another-key", columnar=False)
    phone_columns = "call_id, from_number_e164, from_number_key, to_number_e164, to_number_key"
    assert sorted(con.execute(f"SELECT {phone_columns} FROM raw.telephony_legs").fetchall()) == (
        sorted(reference.execute(f"SELECT {phone_columns} FROM raw.telephony_legs").fetchall())
    )


# Phone spellings read by both paths (a leg's number) and by the phone map (test below).
PHONE_SPELLINGS = [
    "",
    " ",
    "+",
    "-",
    "()",
    "anonymous",
    " Restricted ",
    "(212) 555-0100",
    "(212) 555-0123",
    "212.555.0123",
    "212-555-0123",
    "+1 212 555 0123",
    " +12125550123",
    "+12125550123 ",
    "12125550123",
    "+1 (555) 010-0100",
    "555-0100",
    "1-800-FLOWERS",
    "212-555-0123 x12",
    "212-555-0123;ext=9",
    "\t2125550123",
    "020 7946 0958",
    "+44 20 7946 0958",
    "07700 900123",
    "+33 1 23 45 67 89",
    "0000",
    "12",
    "+999 1234",
]


ROW = "{id},,inbound,{start},{answer},{end},{frm},+12125550100,{status},sales,,,,{site},{talk}\n"


def _legs(*rows: dict) -> str:
    base = {
        "answer": "",
        "frm": "+12125550123",
        "status": "no_answer",
        "site": "nyc",
        "talk": "",
    }
    return HEADER + "".join(ROW.format(**{**base, **row}) for row in rows)


# Files the columnar path must read itself (and load as the row reader does).
COLUMNAR_CASES = {
    "offsets": _legs(
        {"id": "a1", "start": "2025-03-03T10:00:00Z", "end": "2025-03-03T10:01:00Z"},
        {"id": "a2", "start": "2025-03-03T10:00:00+05:30", "end": "2025-03-03T10:01:00.5+05:30"},
        {
            "id": "a3",
            "start": "2025-03-03T10:00:00-03:00",
            "end": "2025-03-03 10:02:00.123456-03:00",
        },
        {"id": "a4", "start": "2025-03-03", "end": "2025-03-03T00:00:09"},
    ),
    "local_dst": _legs(
        # New York: 2025-11-02 01:00-01:59 happens twice (fold=0: the earlier, EDT);
        # 2025-03-09 is a spring-forward day outside its gap hour
        {"id": "b1", "start": "2025-11-02T01:30:00", "end": "2025-11-02T01:40:00"},
        {"id": "b2", "start": "2025-03-09T01:59:59.999999", "end": "2025-03-09T03:00:01"},
        {"id": "b3", "start": "2025-07-01T12:00:00", "end": "2025-07-01T12:00:00", "site": "lax"},
        {"id": "b4", "start": "2025-07-01T12:00:00", "end": "2025-07-01T12:00:30", "site": " NYC "},
        {"id": "b5", "start": "2025-07-01T12:00:00", "end": "2025-07-01T12:00:30", "site": ""},
    ),
    "answered_and_talk": _legs(
        {
            "id": "c1",
            "start": "2025-05-05T09:00:00",
            "answer": "2025-05-05T09:00:07.25",
            "end": "2025-05-05T09:03:00",
            "status": "Answered",
        },
        {
            "id": "c2",
            "start": "2025-05-05T09:00:00",
            "answer": "2025-05-05T09:00:07",
            "end": "2025-05-05T09:03:00",
            "status": "answered",
            "talk": "150.5",
        },
        {
            "id": "c3",
            "start": "2025-05-05T09:00:00",
            "end": "2025-05-05T09:00:04",
            "status": "No-Answer",
        },
    ),
    "phones": _legs(
        *(
            {"id": f"d{i}", "start": "2025-05-05T09:00:00", "end": "2025-05-05T09:01:00", "frm": n}
            for i, n in enumerate(PHONE_SPELLINGS)
            if "," not in n and '"' not in n
        )
    ),
    "crlf_header_only": HEADER.replace("\n", "\r\n"),
    "crlf": _legs(
        {"id": "e1", "start": "2025-05-05T09:00:00", "end": "2025-05-05T09:01:00"}
    ).replace("\n", "\r\n"),
}

# Files the columnar path must hand to the row reader (which rejects or reads them).
ROW_READER_CASES = {
    "dst_gap": _legs({"id": "f1", "start": "2025-03-09T02:30:00", "end": "2025-03-09T03:10:00"}),
    "duplicate_id": _legs(
        {"id": "f2", "start": "2025-05-05T09:00:00", "end": "2025-05-05T09:01:00"},
        {"id": "f2", "start": "2025-05-05T09:00:00", "end": "2025-05-05T09:02:00"},
    ),
    "padded_id": _legs({"id": " f3", "start": "2025-05-05T09:00:00", "end": "2025-05-05T09:01:00"}),
    "bad_status": _legs(
        {"id": "f4", "start": "2025-05-05T09:00:00", "end": "2025-05-05T09:01:00", "status": "lost"}
    ),
    "exponent_talk": _legs(
        {"id": "f5", "start": "2025-05-05T09:00:00", "end": "2025-05-05T09:01:00", "talk": "1e1"}
    ),
    "ended_before": _legs(
        {"id": "f6", "start": "2025-05-05T09:00:00", "end": "2025-05-05T08:01:00"}
    ),
    "quoted": _legs(
        {"id": "f7", "start": "2025-05-05T09:00:00", "end": "2025-05-05T09:01:00"}
    ).replace("f7,", '"f7",'),
    "blank_line": _legs({"id": "f8", "start": "2025-05-05T09:00:00", "end": "2025-05-05T09:01:00"})
    + "\n",
    "short_row": _legs({"id": "f9", "start": "2025-05-05T09:00:00", "end": "2025-05-05T09:01:00"})
    + "f10,,inbound\n",
    "unknown_site": _legs(
        {"id": "f11", "start": "2025-05-05T09:00:00", "end": "2025-05-05T09:01:00", "site": "sfo"}
    ),
    "missing_start": _legs({"id": "f15", "start": "", "end": "2025-05-05T09:01:00"}),
    "missing_end": _legs({"id": "f16", "start": "2025-05-05T09:00:00", "end": ""}),
    "answered_outside": _legs(
        {
            "id": "f17",
            "start": "2025-05-05T09:00:00",
            "answer": "2025-05-05T09:05:00",
            "end": "2025-05-05T09:01:00",
        }
    ),
    "too_long": _legs({"id": "f18", "start": "2025-05-05T09:00:00", "end": "2025-05-07T09:00:00"}),
    "talk_too_long": _legs(
        {
            "id": "f19",
            "start": "2025-05-05T09:00:00",
            "end": "2025-05-05T09:01:00",
            "talk": "999999",
        }
    ),
    "oversize_field": _legs(
        {"id": "f20", "start": "2025-05-05T09:00:00", "end": "2025-05-05T09:01:00"}
    ).replace("sales", "s" * 70_000),
    "hour_24": _legs({"id": "f12", "start": "2025-05-05T24:00:00", "end": "2025-05-05T23:01:00"}),
    "compact_offset": _legs(
        {"id": "f13", "start": "2025-05-05T09:00:00+0100", "end": "2025-05-05T09:01:00+0100"}
    ),
    "latin1": _legs({"id": "f14", "start": "2025-05-05T09:00:00", "end": "2025-05-05T09:01:00"})
    .replace("sales", "caf\u00e9")
    .encode("cp1252"),
}


def test_edge_cases_load_identically_and_take_the_expected_path(tmp_path):
    landing = tmp_path / "landing"
    for name, content in {**COLUMNAR_CASES, **ROW_READER_CASES}.items():
        put(landing, f"telephony/{name}.csv", content)
    put(
        landing,
        "marketing/tracking_numbers.csv",
        "tracking_number,campaign,source,channel,default_intent,valid_from,valid_to\n"
        "+12125550120,brand,google,paid_search,high_intent,2024-09-08,\n"
        "+13105550121,mail,direct_mail,print,,2024-09-08,2025-02-25T10:00:00Z\n",
    )
    cons, summaries = _load_both(tmp_path, landing)
    _assert_same_raw(cons)
    columnar = _columnar_files(summaries[True])
    expected = {f"telephony/{name}.csv" for name in COLUMNAR_CASES}
    assert expected | {"marketing/tracking_numbers.csv"} == columnar


@pytest.mark.parametrize("region", ["US", "GB"])
def test_phone_map_equals_the_normalizer(region):
    raws = PHONE_SPELLINGS
    con = duckdb.connect()
    con.execute("CREATE TABLE pairs (raw VARCHAR, region VARCHAR)")
    con.executemany("INSERT INTO pairs VALUES (?, ?)", [[raw, region] for raw in raws])
    markers = load_config().unknown_markers
    mapped = PhoneNormalizer(KEY, markers)
    build_phone_map(con, "SELECT raw, region FROM pairs", mapped, "phone_map")
    got = {
        raw: tuple(values)
        for raw, *values in con.execute(
            "SELECT raw, e164, is_valid, is_unknown, key, digits FROM phone_map"
        ).fetchall()
    }
    reference = PhoneNormalizer(KEY, markers)
    assert got == {raw: reference(raw, region) for raw in raws}


# Values without a canonical key that phonenumbers reads as written (an extension, other
# symbols), and two with letters outside an extension (invalid unread).
AS_WRITTEN = [
    "212-555-0123 x12",
    "(212) 555-0123 ext. 45",
    "212-555-0123;ext=9",
    "+1 212 555 0123 #7",
    "212/555/0123",
    "555-0100 x1",
    "+44 20 7946 0958 x3",
    "020 7946 0958 ext 2",
    "1-800-FLOWERS x5",
    "212-555-CALL",
]
WITH_LETTERS = {"1-800-FLOWERS x5", "212-555-CALL"}


@pytest.mark.parametrize("region", ["US", "GB"])
def test_phone_map_parses_values_as_written_in_the_keys_round(region, monkeypatch):
    """The phone map hands the values it parses as written to phonenumbers with the keys, in
    one round (worker processes when many), each once, instead of one by one after it; each
    value's E.164 is phonenumbers' own (without the extension), letters make it invalid."""
    import phonenumbers

    from orchestration.ingest import normalize
    from orchestration.phoneparse import e164_or_none

    batches: list[list[tuple[str, str]]] = []

    def recording(items, workers=None):
        batches.append(list(items))
        return [e164_or_none(key, reg) for key, reg in items]

    def unexpected(key, reg):
        raise AssertionError(f"{key!r} parsed outside the keys' round")

    monkeypatch.setattr(normalize, "parse_e164_many", recording)
    monkeypatch.setattr(normalize, "_e164_or_none", unexpected)
    con = duckdb.connect()
    con.execute("CREATE TABLE pairs (raw VARCHAR, region VARCHAR)")
    con.executemany("INSERT INTO pairs VALUES (?, ?)", [[raw, region] for raw in AS_WRITTEN])
    phones = PhoneNormalizer(KEY, load_config().unknown_markers)
    build_phone_map(con, "SELECT raw, region FROM pairs", phones, "phone_map")
    sent = [text for batch in batches for text, _ in batch]
    assert sorted(sent) == sorted(set(AS_WRITTEN) - WITH_LETTERS)
    got = dict(con.execute("SELECT raw, e164 FROM phone_map").fetchall())
    for raw in AS_WRITTEN:
        number = None
        if raw not in WITH_LETTERS:
            try:
                number = phonenumbers.parse(raw, region)
            except phonenumbers.NumberParseException:
                pass
        expected = (
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if number is not None and phonenumbers.is_valid_number(number)
            else None
        )
        assert got[raw] == expected, raw
    assert got["212-555-0123 x12"] == ("+12125550123" if region == "US" else None)
    assert got["+44 20 7946 0958 x3"] == "+442079460958"
    # the row reader's normalizer takes the parsed values too (prime), nothing parsed again
    reader = PhoneNormalizer(KEY, load_config().unknown_markers)
    batches.clear()
    reader.prime([(raw, region) for raw in AS_WRITTEN])
    assert {reader(raw, region)[0] for raw in AS_WRITTEN} == set(got.values())
    assert sorted(text for batch in batches for text, _ in batch) == sorted(sent)


def _key_sample(count: int) -> list[tuple[str, str]]:
    """`count` canonical keys, valid and not, in two regions."""
    keys = [(f"212{n:07d}", "US") for n in range(count // 2)]
    keys += [(f"+4420{n:08d}", "GB") for n in range(count - count // 2)]
    keys[::7] = [(f"555{n:04d}", "US") for n in range(len(keys[::7]))]
    return keys


def test_phone_workers_are_started_once_and_answer_as_phonenumbers(monkeypatch, caplog):
    """The workers start with the first round big enough, every later round (smaller ones
    too) goes to the same processes, each answer is `e164_or_none`'s in this process, `close`
    ends them; a worker that dies stops the workers, with a warning, and the round is parsed
    in process, right."""
    from orchestration.ingest import normalize
    from orchestration.phoneparse import e164_or_none

    monkeypatch.setattr(normalize, "POOL_MIN_KEYS", 40)
    monkeypatch.setattr(normalize, "POOL_RUNNING_MIN_KEYS", 10)
    workers = normalize.PhoneWorkers(2)
    keys = _key_sample(120)
    expected = [e164_or_none(key, region) for key, region in keys]
    assert len(set(expected)) > 10 and None in expected
    assert normalize.parse_e164_many(keys[:39], workers) == expected[:39]
    assert workers.pids == []  # below POOL_MIN_KEYS: in process
    assert normalize.parse_e164_many(keys[:60], workers) == expected[:60]
    pids = workers.pids
    assert len(pids) == 2 and os.getpid() not in pids
    procs = list(workers._procs)
    assert normalize.parse_e164_many(keys[60:75], workers) == expected[60:75]
    assert normalize.parse_e164_many(keys[75:], workers) == expected[75:]
    assert workers.pids == pids  # the same processes every round
    workers.close()
    assert workers.pids == [] and all(proc.poll() == 0 for proc in procs)

    workers = normalize.PhoneWorkers(2)
    assert normalize.parse_e164_many(keys[:60], workers) == expected[:60]
    dead = workers._procs[1]
    dead.kill()
    dead.wait()
    with caplog.at_level("WARNING"):
        assert normalize.parse_e164_many(keys[60:], workers) == expected[60:]
    assert "phone workers failed" in caplog.text
    assert workers.failed and workers.pids == [] and not workers.takes(10_000)


def test_an_ingest_keeps_its_phone_workers_and_stops_them(tmp_path, monkeypatch):
    """With the workers taking every round, an ingest starts them once (its normalizer's),
    loads what it loads with every number parsed in process, and stops them at its end."""
    from orchestration.ingest import normalize

    monkeypatch.setattr(normalize, "POOL_MIN_KEYS", 1)
    monkeypatch.setattr(normalize, "POOL_RUNNING_MIN_KEYS", 1)
    monkeypatch.setattr(normalize.os, "cpu_count", lambda: 2)
    rounds: list[tuple[normalize.PhoneWorkers, tuple]] = []  # (the pool, its processes)
    map_ = normalize.PhoneWorkers.map

    def recording(self, items):
        out = map_(self, items)
        rounds.append((self, tuple(self._procs)))
        return out

    monkeypatch.setattr(normalize.PhoneWorkers, "map", recording)
    landing = tmp_path / "landing"
    generate_sample(landing, days=4, calls_per_day=60)
    config = load_config()
    pooled = duckdb.connect(str(tmp_path / "w_pooled.duckdb"))
    ingest_landing(pooled, landing, config, KEY, columnar=True)
    assert len(rounds) > 2
    assert len({id(pool) for pool, _ in rounds}) == 1  # one pool for the ingest
    procs = rounds[0][1]
    assert len(procs) == 2 and all(each == procs for _, each in rounds)  # the same two
    assert all(proc.poll() == 0 for proc in procs)  # stopped at the ingest's end
    assert rounds[0][0].pids == []
    # the same files with every number parsed in this process: the same rows
    count = len(rounds)
    monkeypatch.setattr(normalize.PhoneWorkers, "takes", lambda self, pairs: False)
    in_process = duckdb.connect(str(tmp_path / "w_in_process.duckdb"))
    ingest_landing(in_process, landing, config, KEY, columnar=True)
    assert len(rounds) == count
    _assert_same_raw({True: pooled, False: in_process})


def test_each_file_is_read_once(tmp_path, monkeypatch):
    """The chunk reads (and hashes) the whole file once (`Path.read_bytes`, counted here; the
    plan opens it for its first 64 KiB only), and the ingest takes that digest instead of
    reading the file again. A chunk's files are read in a thread while DuckDB works on the
    chunk before (one file a chunk here)."""
    from orchestration.ingest import fastpath

    monkeypatch.setattr(fastpath, "CHUNK_ROWS", 1)
    reads: dict[str, int] = {}
    threads: set[str] = set()
    read_bytes = Path.read_bytes

    def counting(self):
        reads[self.name] = reads.get(self.name, 0) + 1
        threads.add(threading.current_thread().name.split("_")[0])
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    landing = tmp_path / "landing"
    for name, content in COLUMNAR_CASES.items():
        put(landing, f"telephony/{name}.csv", content)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    summary = ingest_landing(con, landing, load_config(), KEY)
    assert _columnar_files(summary) == {f"telephony/{name}.csv" for name in COLUMNAR_CASES}
    assert reads == {f"{name}.csv": 1 for name in COLUMNAR_CASES}
    assert threads == {"MainThread", "ringledger-read"}
    # the ledger holds the digest of the bytes loaded
    ledger = dict(con.execute("SELECT file, content_hash FROM raw.load_ledger").fetchall())
    for name in COLUMNAR_CASES:
        rel = f"telephony/{name}.csv"
        assert ledger[rel] == hashlib.sha256(read_bytes(landing / rel)).hexdigest()


def test_file_rewritten_after_the_plan_goes_to_the_row_reader(tmp_path, monkeypatch):
    """A file whose header changes between the plan (which picked its layout from the header)
    and its chunk's read is read by the row reader, whose rows equal a clean load."""
    from orchestration.ingest import fastpath

    landing = tmp_path / "landing"
    row = {"id": "r1", "start": "2025-05-05T09:00:00", "end": "2025-05-05T09:01:00"}
    path = put(landing, "telephony/moved.csv", _legs(row))
    lines = _legs(row).splitlines()
    # the same leg with from_number and to_number swapped (header too): read with the
    # planned layout, every value would still pass and land in the other column
    swapped = "\n".join(
        ",".join([*f[:6], f[7], f[6], *f[8:]]) for f in (line.split(",") for line in lines)
    )
    plan_init = fastpath.ColumnarPlan.__init__

    def rewrite_after_plan(self, run, candidates):
        plan_init(self, run, candidates)
        assert "telephony/moved.csv" in self.planned
        path.write_text(swapped + "\n")

    monkeypatch.setattr(fastpath.ColumnarPlan, "__init__", rewrite_after_plan)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    summary = ingest_landing(con, landing, load_config(), KEY)
    assert not _columnar_files(summary)
    monkeypatch.setattr(fastpath.ColumnarPlan, "__init__", plan_init)
    clean = duckdb.connect(str(tmp_path / "clean.duckdb"))
    ingest_landing(clean, landing, load_config(), KEY, columnar=False)
    _assert_same_raw({True: con, False: clean})
    assert con.execute("SELECT call_id FROM raw.telephony_legs").fetchall() == [("r1",)]
