"""Value normalization at load: text decoding, phone numbers, timestamps.

Everything here is cached on distinct values (phone numbers per `(text, region)`, zone
offsets per local wall-clock hour) so a file of millions of legs costs a dict lookup per
value, not a `phonenumbers` parse or a `zoneinfo` round trip.
"""

from __future__ import annotations

import codecs
import hmac
import json
import logging
import os
import re
import subprocess
import sys
import threading
import weakref
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestration.config import ConfigError
from orchestration.phoneparse import e164_or_none as _e164_or_none

UTF8_BOM = b"\xef\xbb\xbf"
log = logging.getLogger(__name__)
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class RowReject(Exception):
    """A row that is individually impossible; the message is the reject reason."""


# -- text ---------------------------------------------------------------------------------


def _latin1_fallback(exc: UnicodeError) -> tuple[str, int]:
    """CP1252 leaves five bytes undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D): read them as Latin-1."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end


codecs.register_error("ringledger_latin1", _latin1_fallback)


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode an export: UTF-16 when it starts with a UTF-16 BOM (Excel's "Unicode text"),
    else UTF-8 (BOM stripped), else CP1252 with Latin-1 for undefined bytes.

    Returns (text, encoding used). No byte is ever dropped.
    """
    if data.startswith(UTF16_BOMS):
        try:
            return data.decode("utf-16"), "utf-16"  # the BOM gives the byte order
        except UnicodeDecodeError:
            pass  # not UTF-16 after all (odd length, lone surrogates): read as bytes below
    data = data.removeprefix(UTF8_BOM)
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="ringledger_latin1"), "cp1252"


# -- phone numbers ------------------------------------------------------------------------

_DIGITS = frozenset("0123456789")

PhoneValues = tuple[str | None, bool, bool, str | None, int]
# A trailing extension (`x123`, `ext. 4`, `extension 4`, `#4`, `;ext=4`): its letters are allowed.
_EXTENSION = re.compile(r"(?:;\s*ext=|ext(?:ension)?\.?|x|#)\s*\d+\s*$", re.IGNORECASE)


class PhoneNormalizer:
    """`<col>_e164, <col>_is_valid, <col>_is_unknown, <col>_key, <col>_digits` of a raw number.

    unknown marker or empty -> (None, False, True, None, digits)
    invalid (unparseable, not `is_valid_number`, or letters outside an extension, such as a
    vanity `1-800-FLOWERS`: inputs-and-outputs.md flags numbers with letters invalid)
        -> (None, False, False, HMAC(trimmed raw))
    valid -> (E.164 without extension, True, False, HMAC(E.164))
    """

    def __init__(self, hash_key: bytes, unknown_markers: set[str]):
        self._key = hash_key
        self._markers = {m.strip().lower() for m in unknown_markers}
        self._cache: dict[tuple[str, str], PhoneValues] = {}
        # (canonical key, region) -> E.164 or None (invalid); E.164 -> its HMAC
        self._by_key: dict[tuple[str, str], str | None] = {}
        # (stripped text, region) -> E.164 or None, for values parsed as written (`prime_keys`)
        self._by_text: dict[tuple[str, str], str | None] = {}
        self._hmacs: dict[str, str] = {}
        # phonenumbers' worker processes, started by the first big round, kept until `close`
        self.workers = PhoneWorkers()

    def close(self) -> None:
        """Stop the worker processes (the normalizer still works: in process, or new workers)."""
        self.workers.close()

    def hmac_hex(self, text: str) -> str:
        return hmac.digest(self._key, text.encode("utf-8"), "sha256").hex()

    def __call__(self, raw: str, region: str) -> PhoneValues:
        cache_key = (raw, region)
        hit = self._cache.get(cache_key)
        if hit is not None:
            return hit
        result = self._normalize(raw, region)
        self._cache[cache_key] = result
        return result

    @property
    def markers(self) -> frozenset[str]:
        """The unknown-caller markers, lower-cased and stripped."""
        return frozenset(self._markers)

    def prime(self, values: Iterable[tuple[str, str]]) -> int:
        """Warm the cache for many `(raw, region)` values at once: the distinct canonical keys
        not seen yet, and the values parsed as written (`as_written`), are parsed by the
        worker processes when there are many. A pure speed-up: every value missed here is normalized
        on first use. Returns how many went to phonenumbers."""
        keys: dict[tuple[str, str], None] = {}
        texts: list[tuple[str, str]] = []
        for raw, region in values:
            if not raw or (raw, region) in self._cache:
                continue
            key, text = self._parse_input(raw)
            if key is not None:
                keys[(key, region)] = None
            elif text is not None:
                texts.append((text, region))
        return self.prime_keys(keys, texts=texts)

    def as_written(self, values: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """`(stripped text, region)` of the values among `values` that `__call__` would hand
        to phonenumbers as written and has not normalized yet: for `prime_keys(texts=...)`."""
        out: list[tuple[str, str]] = []
        for raw, region in values:
            if raw and (raw, region) not in self._cache:
                text = self._parse_input(raw)[1]
                if text is not None:
                    out.append((text, region))
        return out

    def _parse_input(self, raw: str) -> tuple[str | None, str | None]:
        """What `__call__` hands to phonenumbers for `raw`: `(canonical key, None)`, or
        `(None, stripped text)` for a value parsed as written (an extension, other symbols);
        `(None, None)` when it parses nothing (blank, an unknown-caller marker, letters outside
        an extension, which make a number invalid unread)."""
        text = raw.strip()
        if not text or text.lower() in self._markers:
            return None, None
        key = canonical_phone_key(text)
        if key is not None:
            return key, None
        return (None, None) if _has_letters(text) else (None, text)

    def prime_keys(
        self,
        keys: Iterable[tuple[str, str]],
        texts: Iterable[tuple[str, str]] = (),
    ) -> int:
        """Parse the `(canonical key, region)` pairs not parsed yet (see `prime`), and the
        `(text, region)` values to parse as written (`as_written`) with the first of them,
        in one round of worker processes; returns how many went to phonenumbers.

        Keys without a `+` go first. A `+` key that is exactly the E.164 of a valid number
        found among them needs no parse: a valid number's E.164 parses back to that number
        in any region (the `+` fixes the country), so it is valid with itself as E.164."""
        pending = [pair for pair in dict.fromkeys(keys) if pair not in self._by_key]
        plain = [pair for pair in pending if not pair[0].startswith("+")]
        written = [pair for pair in dict.fromkeys(texts) if pair not in self._by_text]
        parsed = parse_e164_many(plain + written, self.workers)
        self._by_key.update(zip(plain, parsed[: len(plain)], strict=True))
        self._by_text.update(zip(written, parsed[len(plain) :], strict=True))
        valid = {e164 for e164 in self._by_key.values() if e164 is not None}
        plus = []
        for pair in pending:
            if pair[0].startswith("+"):
                if pair[0] in valid:
                    self._by_key[pair] = pair[0]
                else:
                    plus.append(pair)
        self._by_key.update(zip(plus, parse_e164_many(plus, self.workers), strict=True))
        return len(plain) + len(written) + len(plus)

    def e164_of_key(self, key: str, region: str) -> str | None:
        """E.164 of a canonical key read in `region`, None when not a valid number."""
        by_key = (key, region)
        if by_key in self._by_key:
            return self._by_key[by_key]
        e164 = self._by_key[by_key] = _e164_or_none(key, region)
        return e164

    def _normalize(self, raw: str, region: str) -> PhoneValues:
        digits = sum(1 for ch in raw if ch in _DIGITS)
        text = raw.strip()
        if not text or text.lower() in self._markers:
            return (None, False, True, None, digits)
        key = canonical_phone_key(text)
        if key is not None:
            # formatting-only variants of one number share one phonenumbers call
            e164 = self.e164_of_key(key, region)
            if e164 is None:
                return (None, False, False, self.hmac_hex(text), digits)
            return (e164, True, False, self.e164_hmac(e164), digits)
        # parsed as written (an extension, other symbols): letters outside an extension make
        # it invalid whatever phonenumbers reads; E.164 never carries the extension
        if _has_letters(text):
            return (None, False, False, self.hmac_hex(text), digits)
        e164 = self._by_text.get((text, region), _UNPARSED)
        if e164 is _UNPARSED:
            e164 = _e164_or_none(text, region)
        if e164 is None:
            return (None, False, False, self.hmac_hex(text), digits)
        return (e164, True, False, self.e164_hmac(e164), digits)

    def e164_hmac(self, e164: str) -> str:
        """HMAC of an E.164 (cached: many raw spellings share one number)."""
        key = self._hmacs.get(e164)
        if key is None:
            key = self._hmacs[e164] = self.hmac_hex(e164)
        return key


_UNPARSED = object()  # not in PhoneNormalizer._by_text
# Characters that only format a number: text made of digits, these and at most one leading
# '+' parses to the same number as its digits alone (with the '+').
_FORMATTING = frozenset("0123456789()-. ")
_NOT_DIGITS = str.maketrans("", "", "()-. ")


def canonical_phone_key(text: str) -> str | None:
    """`+` (when leading) and the digits of a stripped number written with digits, spaces,
    parentheses, dashes and dots only; None for anything else (letters, extensions, other
    symbols), which is parsed as written. Not a parser: phonenumbers parses the key."""
    body = text.removeprefix("+")
    if not _FORMATTING.issuperset(body):
        return None
    digits = body.translate(_NOT_DIGITS)
    return f"+{digits}" if len(body) != len(text) else digits


# A round of fewer pairs is parsed in process: below POOL_MIN_KEYS starting the workers
# (~0.1 s) costs more than they save; once they run, a round of POOL_RUNNING_MIN_KEYS or more
# goes to them (a round's cost is then its JSON through two pipes, ~1 us a pair).
POOL_MIN_KEYS = 5_000
POOL_RUNNING_MIN_KEYS = 500


class PhoneWorkers:
    """phonenumbers' worker processes (`python -m orchestration.phoneparse`, one JSON line in,
    one out), kept for a whole ingest: started by the first round of at least POOL_MIN_KEYS
    pairs, reused by every later round (an ingest has one or two rounds a chunk and each
    process start cost ~0.1 s), stopped by `close` or when the object is collected. Two on a
    machine with two cores or more (phonenumbers is pure Python), none on one core."""

    def __init__(self, count: int | None = None):
        self.count = min(2, os.cpu_count() or 1) if count is None else count
        self.failed = False  # a worker died: every later round is parsed in process
        self._procs: list[subprocess.Popen] = []
        self._stop: weakref.finalize | None = None
        self._lock = threading.Lock()  # one round at a time: the answers are read in order

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs]

    def takes(self, pairs: int) -> bool:
        """Whether a round of `pairs` goes to the workers."""
        if self.count < 2 or self.failed:
            return False
        return pairs >= (POOL_RUNNING_MIN_KEYS if self._procs else POOL_MIN_KEYS)

    def map(self, items: list[tuple[str, str]]) -> list[str | None]:
        """`e164_or_none` of every pair, the pairs split evenly over the workers."""
        with self._lock:
            return self._map(items)

    def _map(self, items: list[tuple[str, str]]) -> list[str | None]:
        if not self._procs:
            cwd = str(Path(__file__).resolve().parents[2])
            self._procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "orchestration.phoneparse"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    encoding="utf-8",
                    cwd=cwd,
                )
                for _ in range(self.count)
            ]
            self._stop = weakref.finalize(self, _stop_workers, list(self._procs))
        size = -(-len(items) // len(self._procs))
        chunks = [items[start : start + size] for start in range(0, len(items), size)]
        # every worker gets its line before any answer is read: they parse at the same time
        # (each reads its whole line before it writes, so no pipe fills up both ways)
        for proc, chunk in zip(self._procs, chunks, strict=False):
            proc.stdin.write(json.dumps(chunk) + "\n")
            proc.stdin.flush()
        out: list[str | None] = []
        for proc, chunk in zip(self._procs, chunks, strict=False):
            answer = json.loads(proc.stdout.readline() or "null")
            if not isinstance(answer, list) or len(answer) != len(chunk):
                raise ValueError(f"phone worker {proc.pid} answered {len(chunk)} pairs wrongly")
            out.extend(answer)
        return out

    def close(self) -> None:
        with self._lock:
            if self._stop is not None:
                self._stop()  # runs once
            self._procs = []
            self._stop = None


def _stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        try:
            proc.stdin.close()  # the worker's input ends: it exits
        except OSError:
            pass
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def _e164_batch(items: list[tuple[str, str]]) -> list[str | None]:
    return [_e164_or_none(key, region) for key, region in items]


def parse_e164_many(
    items: list[tuple[str, str]], workers: PhoneWorkers | None = None
) -> list[str | None]:
    """`e164_or_none` of many (key, region) pairs: by `workers` when the round is big enough
    for them (`PhoneWorkers.takes`), else in this process; a worker that fails stops them all
    and the ingest goes on in process, with a warning."""
    if workers is None or not workers.takes(len(items)):
        return _e164_batch(items)
    try:
        return workers.map(items)
    except (OSError, ValueError) as exc:
        log.warning("phone workers failed (%s): parsing in process", exc)
        workers.failed = True
        workers.close()
        return _e164_batch(items)


def _has_letters(text: str) -> bool:
    if not any(ch.isalpha() for ch in text):
        return False
    return any(ch.isalpha() for ch in _EXTENSION.sub("", text))


# -- timestamps ---------------------------------------------------------------------------

_UTC = UTC
_GAP = "gap"  # cache marker: the whole wall-clock hour lies in a DST gap
_MIXED = "mixed"  # cache marker: an offset change inside the hour; resolve per value


def zone_for(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r}") from exc


class TimestampParser:
    """ISO 8601 text -> naive UTC datetime (microseconds kept), per the clock rules.

    With an offset (`Z`, `+hh:mm`, `+hhmm`, `+hh`): converted to UTC. Without: read in `zone`
    (None = UTC). A bare date is 00:00 of that date. A local time in a DST gap raises
    RowReject; a local time in an overlap takes the earlier instant (fold=0).
    """

    def __init__(self) -> None:
        # (zone, wall hour) -> UTC offset of every wall time in that hour, or a marker.
        self._hours: dict[tuple[ZoneInfo, datetime], timedelta | str] = {}

    def __call__(self, text: str, zone: ZoneInfo | None, column: str) -> datetime | None:
        value = text.strip()
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise RowReject(f"unparseable timestamp in {column}: {text!r}") from None
        try:
            if parsed.tzinfo is not None:
                return parsed.replace(tzinfo=None) - parsed.utcoffset()
            if zone is None:
                return parsed
            return parsed - self._offset(parsed, zone, column, text)
        except OverflowError:
            raise RowReject(f"unparseable timestamp in {column}: {text!r} (out of range)") from None

    def hour_offset(self, hour: datetime, zone: ZoneInfo) -> timedelta | None:
        """The UTC offset of every wall time of a local hour, None when the hour has a DST
        gap or an offset change inside it (such values are resolved one by one)."""
        try:
            entry = self._hour(hour, zone)
        except OverflowError:  # near datetime's limits: the row reader rejects such values
            return None
        return entry if isinstance(entry, timedelta) else None

    def _hour(self, hour: datetime, zone: ZoneInfo) -> timedelta | str:
        entry = self._hours.get((zone, hour))
        if entry is None:
            entry = self._hours[(zone, hour)] = self._hour_entry(hour, zone)
        return entry

    def _offset(self, wall: datetime, zone: ZoneInfo, column: str, text: str) -> timedelta:
        entry = self._hour(wall.replace(minute=0, second=0, microsecond=0, fold=0), zone)
        if entry is _MIXED:
            entry = _wall_offset(wall.replace(fold=0), zone)
        if entry is None or entry is _GAP:
            raise RowReject(f"local time in DST gap in {column}: {text!r} ({zone.key})")
        return entry  # type: ignore[return-value]

    @staticmethod
    def _hour_entry(hour: datetime, zone: ZoneInfo) -> timedelta | str:
        first = _wall_offset(hour, zone)
        last = _wall_offset(hour + timedelta(minutes=59, seconds=59, microseconds=999999), zone)
        if first is None and last is None:
            return _GAP
        if first is not None and first == last:
            return first
        return _MIXED


def _wall_offset(wall: datetime, zone: ZoneInfo) -> timedelta | None:
    """UTC offset of a naive local wall time (fold=0: earlier instant), None inside a DST gap."""
    aware = wall.replace(tzinfo=zone, fold=0)
    back = aware.astimezone(_UTC).astimezone(zone).replace(tzinfo=None)
    if back != wall:
        return None
    return aware.utcoffset()
