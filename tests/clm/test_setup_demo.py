from io import StringIO

import pytest
from django.core.management import call_command

from lifecycle.models import Customer

pytestmark = pytest.mark.django_db


def test_setup_demo_on_existing_data_imports_nothing_and_prints_one_account_per_role(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    Customer.objects.create(external_id="c-1", first_seen_at="2025-01-01T00:00:00Z")
    out = StringIO()
    call_command("setup_demo", stdout=out)
    assert Customer.objects.count() == 1
    printed = out.getvalue()
    assert "First run" not in printed
    for role in ("admin", "marketer", "viewer"):
        assert f"user {role}" in printed
    assert (tmp_path / "demo-accounts.json").is_file()


def test_setup_demo_first_run_imports_cdnow_and_seeds(settings, tmp_path, monkeypatch):
    settings.DATA_DIR = tmp_path
    calls = []
    monkeypatch.setattr("clm.management.commands.setup_demo.call_command", lambda name, **kwargs: calls.append(name))
    call_command("setup_demo", stdout=StringIO())
    assert calls == ["import_cdnow", "seed_demo"]
