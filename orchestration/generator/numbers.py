"""Phone numbers for the sample exports: valid NANP numbers and their dirty spellings.

The generator never calls `phonenumbers` (its output must depend only on its arguments,
not on the library's metadata version); the tests check every spelling with it.
"""

from __future__ import annotations

import random

# Area codes of real, assigned NANP numbering plan areas (NYC and LA regions and a few others).
AREA_CODES: tuple[str, ...] = (
    "212", "646", "718", "917", "347", "929", "516", "914", "201", "973",
    "310", "213", "323", "424", "818", "626", "562", "714", "949", "909",
    "415", "702", "305", "617", "312",
)  # fmt: skip

# Exchanges (central office codes) that are never handed out to subscribers, or that we keep
# for the business's own lines (555-01xx), so a generated caller never collides with them.
_RESERVED_EXCHANGES = frozenset({555, 950, 958, 959, 976})

# Valid spellings seen in real exports, with their weights in telephony exports.
TELEPHONY_FORMATS: tuple[tuple[str, float], ...] = (
    ("e164", 0.82),  # +12125550100
    ("paren", 0.05),  # (212) 555-0100
    ("dots", 0.04),  # +1 212.555.0100
    ("digits11", 0.05),  # 12125550100
    ("extension", 0.04),  # 212-555-0100 x123
)
CRM_FORMATS: tuple[tuple[str, float], ...] = (
    ("paren", 0.35),
    ("dashes", 0.20),  # +1 212-555-0100
    ("dots10", 0.15),  # 212.555.0100
    ("e164", 0.30),
)
DIALED_FORMATS: tuple[tuple[str, float], ...] = (("e164", 0.6), ("digits11", 0.2), ("paren", 0.2))


def random_e164(rng: random.Random, area: str) -> str:
    """A valid US number in area `area`, outside reserved exchanges."""
    while True:
        exchange = rng.randrange(200, 1000)
        if exchange % 100 != 11 and exchange not in _RESERVED_EXCHANGES:
            break
    return f"+1{area}{exchange:03d}{rng.randrange(10000):04d}"


def spell(e164: str, style: str, rng: random.Random) -> str:
    """Write a +1 E.164 number the way a given system spells it (always still valid)."""
    area, exchange, line = e164[2:5], e164[5:8], e164[8:12]
    if style == "paren":
        return f"({area}) {exchange}-{line}"
    if style == "dots":
        return f"+1 {area}.{exchange}.{line}"
    if style == "dots10":
        return f"{area}.{exchange}.{line}"
    if style == "dashes":
        return f"+1 {area}-{exchange}-{line}"
    if style == "digits11":
        return f"1{area}{exchange}{line}"
    if style == "extension":
        return f"{area}-{exchange}-{line} x{rng.randrange(10, 9999)}"
    return e164


def pick_style(rng: random.Random, formats: tuple[tuple[str, float], ...]) -> str:
    """One style name drawn by weight."""
    roll = rng.random()
    for name, weight in formats:
        roll -= weight
        if roll < 0:
            return name
    return formats[-1][0]


def invalid_number(rng: random.Random) -> str:
    """A caller number that does not pass `is_valid_number` (and is no extension or marker)."""
    kind = rng.randrange(4)
    if kind == 0:  # area code 555 does not exist
        return f"555-{rng.randrange(200, 1000)}-{rng.randrange(10000):04d}"
    if kind == 1:  # letters where digits belong: only 8 digits left
        area = rng.choice(AREA_CODES)
        return f"{area}-{rng.randrange(200, 1000)}-{rng.randrange(100):02d}AB"
    if kind == 2:  # 40 digits
        return str(rng.randrange(1, 10)) + "".join(str(rng.randrange(10)) for _ in range(39))
    area = rng.choice(AREA_CODES)  # too short
    return f"+1 {area} {rng.randrange(200, 1000)} {rng.randrange(100):02d}"
