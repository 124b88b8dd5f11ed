"""Value normalization at load: text decoding, phone numbers, timestamps.

Everything here is cached on distinct values (phone numbers per `(text, region)`, zone
offsets per local wall-clock hour) so a file of millions of legs costs a dict lookup per
value, not a `phonenumbers` parse or a `zoneinfo` round trip.
"""

from __future__ import annotations

import codecs
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from orchestration.config import ConfigError

UTF8_BOM = b"\xef\xbb\xbf"


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
    """Decode an export: UTF-8 (BOM stripped), else CP1252 with Latin-1 for undefined bytes.

    Returns (text, encoding used). No byte is ever dropped.
    """
    data = data.removeprefix(UTF8_BOM)
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="ringledger_latin1"), "cp1252"


# -- phone numbers ------------------------------------------------------------------------

_DIGITS = frozenset("0123456789")
_E164 = phonenumbers.PhoneNumberFormat.E164

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

    def hmac_hex(self, text: str) -> str:
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def __call__(self, raw: str, region: str) -> PhoneValues:
        cache_key = (raw, region)
        hit = self._cache.get(cache_key)
        if hit is not None:
            return hit
        result = self._normalize(raw, region)
        self._cache[cache_key] = result
        return result

    def _normalize(self, raw: str, region: str) -> PhoneValues:
        digits = sum(1 for ch in raw if ch in _DIGITS)
        text = raw.strip()
        if not text or text.lower() in self._markers:
            return (None, False, True, None, digits)
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return (None, False, False, self.hmac_hex(text), digits)
        if not phonenumbers.is_valid_number(number) or _has_letters(text):
            return (None, False, False, self.hmac_hex(text), digits)
        e164 = phonenumbers.format_number(number, _E164)  # E.164 never carries the extension
        return (e164, True, False, self.hmac_hex(e164), digits)


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

    def _offset(self, wall: datetime, zone: ZoneInfo, column: str, text: str) -> timedelta:
        hour = wall.replace(minute=0, second=0, microsecond=0, fold=0)
        entry = self._hours.get((zone, hour))
        if entry is None:
            entry = self._hour_entry(hour, zone)
            self._hours[(zone, hour)] = entry
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
