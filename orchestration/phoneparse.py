"""Parse and validate phone numbers with `phonenumbers`, in this process or in worker processes.

`e164_or_none` is the one place the ingest asks `phonenumbers` about a canonical key (see
`orchestration.ingest.normalize.canonical_phone_key`). `python -m orchestration.phoneparse`
reads lines of JSON lists of `[key, region]` pairs on standard input and answers each with a
line, the JSON list of their E.164 (or null), until its input ends: the ingest's workers, kept
for a whole ingest (`PhoneWorkers`). They are plain subprocesses (no
multiprocessing start method re-importing the parent's main module), and this module imports
nothing but phonenumbers so they start fast.
"""

from __future__ import annotations

import json
import sys

import phonenumbers

_E164 = phonenumbers.PhoneNumberFormat.E164
# country calling code -> its main region, when a valid number of that region is certainly
# found there first by `region_code_for_number` (the region has no leading digits); else None
_MAIN_REGION: dict[int, str | None] = {}


def _main_region(country_code: int) -> str | None:
    if country_code not in _MAIN_REGION:
        region = phonenumbers.region_code_for_country_code(country_code)
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
        first_found = metadata is not None and metadata.leading_digits is None
        _MAIN_REGION[country_code] = region if first_found else None
    return _MAIN_REGION[country_code]


def is_valid(number: phonenumbers.PhoneNumber) -> bool:
    """`phonenumbers.is_valid_number`, with one pass of its patterns instead of two for a
    number valid in its country code's main region.

    `is_valid_number` asks `region_code_for_number` for the number's region, which for a code
    shared by several regions (+1: the US, Canada, the Caribbean) tries the regions in order,
    the main one first, each by its number-type patterns; then it runs the patterns of the
    region found again (`is_valid_number_for_region`). A number valid for the main region (one
    without leading digits) is found there at the first try, so `is_valid_number` is True:
    that check alone decides it. Every other number takes `is_valid_number` itself.
    `tests/test_phoneparse.py` checks the two agree on every region's example numbers."""
    main = _main_region(number.country_code)
    if main is not None and phonenumbers.is_valid_number_for_region(number, main):
        return True
    return phonenumbers.is_valid_number(number)


def e164_or_none(key: str, region: str) -> str | None:
    """E.164 of a number when phonenumbers parses it and finds it valid, else None."""
    try:
        number = phonenumbers.parse(key, region)
    except phonenumbers.NumberParseException:
        return None
    if not is_valid(number):
        return None
    return phonenumbers.format_number(number, _E164)


def main() -> None:
    """A worker kept for a whole ingest (`orchestration.ingest.normalize.PhoneWorkers`): each
    line read is a JSON list of `[key, region]` pairs, answered by one line, the JSON list of
    their E.164 (or null), until the input ends."""
    serve(sys.stdin, sys.stdout)


def serve(requests, replies) -> None:
    for line in requests:
        json.dump([e164_or_none(key, region) for key, region in json.loads(line)], replies)
        replies.write("\n")
        replies.flush()


if __name__ == "__main__":
    main()
