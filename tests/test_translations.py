"""Every message the platform can show has a Chinese translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from booking.i18n import merged_catalog

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {
    "_": None,
    "gettext": None,
    "lazy_gettext": None,
    "_l": None,
    "N_": None,
    "ngettext": (1, 2),
    "lazy_ngettext": (1, 2),
}


def extracted_ids() -> dict[str, str]:
    found: dict[str, str] = {}
    sources = [
        (ROOT / "booking", [("**.py", "python")]),
        (ROOT / "templates", [("**.html", "jinja2"), ("**.txt", "jinja2")]),
    ]
    for directory, method_map in sources:
        for filename, _lineno, message, _comments, _context in extract_from_dir(
            str(directory), method_map=method_map, keywords=KEYWORDS
        ):
            ids = message if isinstance(message, tuple) else (message,)
            for msgid in ids:
                if msgid:
                    found.setdefault(msgid, f"{directory.name}/{filename}")
    return found


def test_every_message_has_a_chinese_translation():
    catalog = merged_catalog("zh_CN")
    missing = {
        msgid: where
        for msgid, where in extracted_ids().items()
        if catalog.get(msgid) is None or not catalog.get(msgid).string
    }
    assert not missing, "untranslated messages:\n" + "\n".join(
        f"  {where}: {msgid!r}" for msgid, where in sorted(missing.items(), key=lambda i: i[1])
    )


def test_chinese_placeholders_match_the_english_ones():
    import re

    pattern = re.compile(r"%\((\w+)\)[sd]")
    catalog = merged_catalog("zh_CN")
    for message in catalog:
        if message.id and isinstance(message.id, str) and message.string:
            assert set(pattern.findall(message.id)) == set(pattern.findall(message.string)), (
                message.id
            )
