"""Credit codes and region codes."""

import pytest

from booking.domain.organizations import (
    clean_region,
    clean_uscc,
    governed_prefix,
    make_uscc,
    region_within,
)


@pytest.mark.parametrize("code", ["91110000600037341L", " 91110000600037341l "])
def test_a_real_credit_code_is_accepted_in_canonical_form(code):
    assert clean_uscc(code) == "91110000600037341L"


@pytest.mark.parametrize(
    "code",
    [
        "91110000600037341M",  # final check digit wrong
        "9111000060003734",  # too short
        "91110000600037351L",  # organisation code check digit wrong
        "Z1110000600037341L",  # unknown registration authority
        "",
        "911100006000373I1L",  # I is not in the alphabet
    ],
)
def test_broken_credit_codes_are_refused(code):
    with pytest.raises(ValueError, match="unified social credit code"):
        clean_uscc(code)


def test_generated_codes_are_valid_and_carry_the_region():
    code = make_uscc("141100", 42)
    assert clean_uscc(code) == code
    assert code[2:8] == "141100"


@pytest.mark.parametrize("code", ["140100", "141102", "140403", "110000", "440305"])
def test_known_regions(code):
    assert clean_region(code) == code


@pytest.mark.parametrize("code", ["149999", "14010", "abcdef", "990000", ""])
def test_unknown_regions_are_refused(code):
    with pytest.raises(ValueError):
        clean_region(code)


def test_region_prefixes():
    assert governed_prefix("140000") == "14"
    assert governed_prefix("140100") == "1401"
    assert region_within("140105", "140100")
    assert region_within("141102", "140000")
    assert not region_within("141102", "140100")
