"""Rules about organisations: the unified social credit code (统一社会信用代码,
GB 32100-2015, checked with python-stdnum) and administrative division codes
(行政区划代码, GB/T 2260), read from ``booking/data/regions.csv``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

from stdnum.cn import uscc as stdnum_uscc
from stdnum.exceptions import ValidationError as StdnumError


@dataclass(frozen=True)
class Region:
    code: str
    name_zh: str
    name_en: str
    parent_code: str | None
    level: str


@cache
def regions() -> dict[str, Region]:
    text = resources.files("booking").joinpath("data/regions.csv").read_text("utf-8")
    table = {}
    for row in csv.DictReader(text.splitlines()):
        table[row["code"]] = Region(
            code=row["code"],
            name_zh=row["name_zh"],
            name_en=row["name_en"],
            parent_code=row["parent_code"] or None,
            level=row["level"],
        )
    return table


_ORG_CODE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# GB 32100-2015: registration authority and the kinds it registers.
_REGISTRATION_KINDS = {
    "1": "1239",
    "5": "1239",
    "9": "123",
    "2": "19",
    "3": "1234589",
    "4": "19",
    "6": "129",
    "7": "129",
    "8": "19",
    "A": "19",
    "N": "1239",
    "Y": "1",
}


def org_code_check_digit(body: str) -> str:
    """Check digit of the 8-character organisation code body (GB 11714-1997)."""
    total = sum(
        _ORG_CODE_ALPHABET.index(c) * w for c, w in zip(body, _ORG_CODE_WEIGHTS, strict=False)
    )
    digit = 11 - total % 11
    return {10: "X", 11: "0"}.get(digit, str(digit))


def clean_uscc(value: str) -> str:
    """The code in its canonical form; ``ValueError`` (a message id) if it is
    not valid: its length and alphabet, the registration authority and kind,
    the check digit of the embedded organisation code and the final check
    digit (python-stdnum's ``cn.uscc``)."""
    try:
        code = stdnum_uscc.validate(value or "")
    except StdnumError:
        raise ValueError("Not a valid unified social credit code.") from None
    kinds = _REGISTRATION_KINDS.get(code[0], "")
    if code[1] not in kinds:
        raise ValueError("Not a valid unified social credit code.")
    body, check = code[8:16], code[16]
    if any(c not in _ORG_CODE_ALPHABET for c in body) or org_code_check_digit(body) != check:
        raise ValueError("Not a valid unified social credit code.")
    return code


def make_uscc(region: str, serial: int, prefix: str = "91") -> str:
    """A valid code for ``region`` and a serial number: for demo and test data."""
    body = f"{serial:08d}"[-8:]
    first17 = f"{prefix}{region}{body}{org_code_check_digit(body)}"
    return first17 + stdnum_uscc.calc_check_digit(first17)


def clean_region(value: str) -> str:
    """A known 6-digit division code. Shanxi's are checked one by one against
    the table; elsewhere the province must be known (the table lists every
    province), since vouchers and providers cross provincial borders."""
    code = (value or "").strip()
    if len(code) != 6 or not code.isdigit():
        raise ValueError("A region is a 6-digit administrative division code.")
    table = regions()
    if code in table:
        return code
    province = code[:2] + "0000"
    if province in table and not code.startswith("14"):
        return code
    raise ValueError("Unknown region code.")


def region_name(code: str, locale: str = "zh_CN") -> str:
    region = regions().get(code)
    if region is None:
        return code
    return region.name_en if locale.startswith("en") else region.name_zh


def region_within(code: str, prefix: str) -> bool:
    """Prefix match of GB/T 2260 codes: ``14`` is Shanxi, ``1401`` Taiyuan.

    A bureau's region written as a full code (``140100``) governs the prefix
    without its trailing zero pairs.
    """
    return code.startswith(governed_prefix(prefix))


def governed_prefix(region: str) -> str:
    prefix = region
    while prefix.endswith("00") and len(prefix) > 2:
        prefix = prefix[:-2]
    return prefix
