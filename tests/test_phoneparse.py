"""`phoneparse.is_valid` decides exactly as `phonenumbers.is_valid_number`.

`is_valid` skips `is_valid_number`'s second pass for numbers valid in their country code's
main region; these tests compare the two on numbers of every region and type, on variants of
them that are invalid or belong to another region of a shared code, and on random numbers of
the shared +1 and +44 codes. They fail if the shortcut ever accepts a number that
`is_valid_number` refuses or the other way round.
"""

from __future__ import annotations

import random

import phonenumbers
import pytest

from orchestration.phoneparse import _main_region, e164_or_none, is_valid

_TYPES = [
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.TOLL_FREE,
    phonenumbers.PhoneNumberType.PREMIUM_RATE,
    phonenumbers.PhoneNumberType.SHARED_COST,
    phonenumbers.PhoneNumberType.VOIP,
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
    phonenumbers.PhoneNumberType.PAGER,
    phonenumbers.PhoneNumberType.UAN,
    phonenumbers.PhoneNumberType.VOICEMAIL,
]


def _example_numbers() -> list[phonenumbers.PhoneNumber]:
    numbers = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in _TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                numbers.append(number)
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            numbers.append(number)
    return numbers


def _variants(
    number: phonenumbers.PhoneNumber, rng: random.Random
) -> list[phonenumbers.PhoneNumber]:
    """The number, one digit longer and shorter, and with random digits changed."""
    national = str(number.national_number)
    texts = [national, national + "5", national[:-1]]
    for _ in range(3):
        position = rng.randrange(len(national))
        texts.append(national[:position] + str(rng.randrange(10)) + national[position + 1 :])
    return [
        phonenumbers.PhoneNumber(country_code=number.country_code, national_number=int(text))
        for text in texts
        if text
    ]


def test_is_valid_agrees_with_is_valid_number_on_every_region_and_type():
    rng = random.Random(11)
    numbers = [v for number in _example_numbers() for v in _variants(number, rng)]
    assert len(numbers) > 3000
    disagree = [
        phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
        for n in numbers
        if is_valid(n) != phonenumbers.is_valid_number(n)
    ]
    assert disagree == []
    # the sample holds both verdicts, and numbers of a shared code outside its main region
    verdicts = [phonenumbers.is_valid_number(n) for n in numbers]
    assert any(verdicts) and not all(verdicts)
    regions = {
        phonenumbers.region_code_for_number(n) for n in numbers if phonenumbers.is_valid_number(n)
    }
    assert {"CA", "JM", "PR", "GG", "JE", "IM", "KZ"} <= regions


@pytest.mark.parametrize("code", [1, 44, 7, 61])
def test_is_valid_agrees_on_random_numbers_of_shared_codes(code):
    rng = random.Random(code)
    numbers = [
        phonenumbers.PhoneNumber(country_code=code, national_number=rng.randrange(10**8, 10**10))
        for _ in range(4000)
    ]
    assert [is_valid(n) for n in numbers] == [phonenumbers.is_valid_number(n) for n in numbers]
    assert any(is_valid(n) for n in numbers)


def test_main_region_only_where_it_is_tried_first():
    # +1: the United States is tried first and has no leading digits
    assert _main_region(1) == "US"
    # +7: Russia, the main region, is told from Kazakhstan by leading digits, not patterns
    assert _main_region(7) is None
    # a code no region has: no shortcut
    assert _main_region(999) is None
    # non-geographic codes (+800): no region metadata, no shortcut
    assert _main_region(800) is None


def test_e164_or_none_of_canonical_keys():
    assert e164_or_none("2125550100", "US") == "+12125550100"
    assert e164_or_none("5555550100", "US") is None  # area code 555: invalid
    assert e164_or_none("+14168675309", "US") == "+14168675309"  # Toronto: CA via +1
    assert e164_or_none("4168675309", "US") == "+14168675309"
    assert e164_or_none("+442079460000", "US") == "+442079460000"
    assert e164_or_none("12", "US") is None
