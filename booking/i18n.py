"""Languages: Chinese (zh_CN, the default) and English.

Message ids are English. The Chinese catalogue is kept as one ``.po`` file per
area under ``booking/translations/zh_CN/LC_MESSAGES/`` (under version control,
so helpers of different areas never edit one file); at start they are merged
and compiled into ``messages.mo`` in the instance folder when any is newer.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

SOURCE_DIR = Path(__file__).parent / "translations"
LOCALES = ("zh_CN", "en")


def source_files(locale: str) -> list[Path]:
    return sorted((SOURCE_DIR / locale / "LC_MESSAGES").glob("*.po"))


def merged_catalog(locale: str) -> Catalog:
    merged = Catalog(locale=locale, domain="messages")
    for path in source_files(locale):
        with path.open("rb") as handle:
            part = read_po(handle, locale=locale)
        for message in part:
            if message.id and message.string and not message.fuzzy:
                merged.add(message.id, message.string)
    return merged


def compile_translations(target_root: str) -> str:
    """Compile the catalogues under ``target_root`` if stale; return the
    directory Flask-Babel should read. Falls back to a temporary folder when
    the instance folder is not writable."""
    try:
        return _compile_into(Path(target_root))
    except OSError:
        return _compile_into(Path(tempfile.gettempdir()) / "jcg-booking-translations")


def _compile_into(root: Path) -> str:
    for locale in LOCALES:
        sources = source_files(locale)
        if not sources:
            continue
        # Babel names Simplified Chinese zh_Hans_CN, which gettext looks up as
        # "zh": the compiled catalogue goes there.
        target = root / locale.split("_")[0] / "LC_MESSAGES" / "messages.mo"
        newest = max(p.stat().st_mtime for p in sources)
        if target.exists() and target.stat().st_mtime >= newest:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as handle:
            write_mo(handle, merged_catalog(locale))
        os.replace(tmp, target)
    return str(root)


def normalise_locale(value: str | None) -> str:
    if not value:
        return "zh_CN"
    value = value.replace("-", "_")
    if value.lower().startswith("en"):
        return "en"
    return "zh_CN"
