"""The German catalogue: every entry translated, none fuzzy, and the committed .mo compiled from the .po (CLM runs
without gettext tools, so a stale .mo would silently show English); the API stays English for its clients."""

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings

from lifecycle.models import LifecycleModel
from tests.conftest import error_fields

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "de" / "LC_MESSAGES"
_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")\s*$')


def po_entries(path: Path) -> list[dict]:
    """The entries of a .po file: msgctxt, msgid, msgid_plural, msgstr (a list: one per plural form), flags.
    Obsolete entries (#~) are left out."""
    entries: list[dict] = []
    entry: dict = {}
    field = None
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if "msgid" in entry:
                entries.append(entry)
            entry, field = {}, None
        elif line.startswith("#,"):
            entry.setdefault("flags", set()).update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif match := _KEYWORD.match(line):
            keyword, index, text = match.groups()
            field = ("msgstr", int(index or 0)) if keyword.startswith("msgstr") else keyword
            if isinstance(field, tuple):
                entry.setdefault("msgstr", {})[field[1]] = ast.literal_eval(text)
            else:
                entry[field] = ast.literal_eval(text)
        elif line.startswith('"') and field is not None:  # a continuation line
            if isinstance(field, tuple):
                entry["msgstr"][field[1]] += ast.literal_eval(line)
            else:
                entry[field] += ast.literal_eval(line)
    for entry in entries:
        entry["msgstr"] = [entry["msgstr"][index] for index in sorted(entry["msgstr"])]
    return [entry for entry in entries if entry["msgid"]]  # the header has an empty msgid


@pytest.fixture(scope="module")
def entries() -> list[dict]:
    return po_entries(CATALOGUE / "django.po")


def test_every_german_entry_is_translated_and_none_is_fuzzy(entries):
    assert len(entries) > 500
    untranslated = [entry["msgid"] for entry in entries if not all(entry["msgstr"])]
    fuzzy = [entry["msgid"] for entry in entries if "fuzzy" in entry.get("flags", set())]
    assert untranslated == [] and fuzzy == []


def test_the_compiled_catalogue_is_the_po(entries):
    with open(CATALOGUE / "django.mo", "rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)._catalog
    for entry in entries:
        msgid = f"{entry['msgctxt']}\x04{entry['msgid']}" if "msgctxt" in entry else entry["msgid"]
        if "msgid_plural" in entry:
            assert [catalog.get((msgid, n)) for n in range(len(entry["msgstr"]))] == entry["msgstr"], msgid
        else:
            assert catalog.get(msgid) == entry["msgstr"][0], msgid


@pytest.mark.django_db
def test_the_api_answers_service_errors_in_english(writer):
    assert LifecycleModel.objects.filter(key="status").exists()
    payload = {
        "code": "spring",
        "name": "Spring",
        "channel": "email",
        "model": "status",
        "stages": ["new"],
        "start_date": "2024-03-01",
        "end_date": "2024-02-01",
        "attribution_days": 30,
    }
    response = writer.post("/api/v1/campaigns/", payload, format="json")
    assert response.status_code == 400
    assert error_fields(response)["end_date"] == ["The campaign ends (2024-02-01) before it starts (2024-03-01)."]
