"""Parse and validate phone numbers with `phonenumbers`, in this process or in worker processes.

`e164_or_none` is the one place the ingest asks `phonenumbers` about a canonical key (see
`orchestration.ingest.normalize.canonical_phone_key`). `python -m orchestration.phoneparse`
reads a JSON list of `[key, region]` pairs on standard input and writes the JSON list of their
E.164 (or null) on standard output: the ingest's workers are plain subprocesses (no
multiprocessing start method re-importing the parent's main module), and this module imports
nothing but phonenumbers so they start fast.
"""

from __future__ import annotations

import json
import sys

import phonenumbers

_E164 = phonenumbers.PhoneNumberFormat.E164


def e164_or_none(key: str, region: str) -> str | None:
    """E.164 of a number when phonenumbers parses it and finds it valid, else None."""
    try:
        number = phonenumbers.parse(key, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, _E164)


def main() -> None:
    items = json.load(sys.stdin)
    json.dump([e164_or_none(key, region) for key, region in items], sys.stdout)


if __name__ == "__main__":
    main()
