import csv
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from lifecycle.models import Customer, Order, Touchpoint

pytestmark = pytest.mark.django_db

CUSTOMERS_CSV = """external_id,email,name,first_seen_at,acquisition_channel,referred_by_external_id
c-1,ada@example.com,Ada,2025-01-05,paid_ads,
c-2,,Bob,2025-01-06T10:00:00Z,,c-1
"""


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def import_csv(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_csv", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def customers(tmp_path):
    import_csv("customers", str(write(tmp_path, "customers.csv", CUSTOMERS_CSV)))


def test_customers_csv_imports_with_referrals_and_blank_cells(customers):
    assert Customer.objects.count() == 2
    bob = Customer.objects.get(external_id="c-2")
    assert bob.email == "" and bob.referred_by.external_id == "c-1" and bob.acquisition_channel is None


def test_orders_csv_imports_and_a_second_run_changes_nothing(tmp_path, customers):
    path = write(
        tmp_path,
        "orders.csv",
        "external_id,customer_external_id,placed_at,amount,status,channel,campaign_code\n"
        "o-1,c-1,2025-02-01,19.99,completed,email,spring\n"
        "o-2,c-2,2025-02-02T12:30:00+02:00,5,,,\n",
    )
    out, _ = import_csv("orders", str(path))
    assert "2 created" in out
    out, _ = import_csv("orders", str(path))
    assert "0 created, 0 updated, 2 unchanged" in out
    assert Order.objects.get(external_id="o-2").status == "completed"


def test_touchpoint_properties_are_json_text_in_csv(tmp_path, customers):
    path = write(
        tmp_path,
        "t.csv",
        "customer_external_id,occurred_at,channel,kind,properties\n"
        'c-1,2025-02-01,email,email_open,"{""subject"": ""Hi""}"\n',
    )
    import_csv("touchpoints", str(path))
    assert Touchpoint.objects.get().properties == {"subject": "Hi"}


def test_missing_column_is_reported_and_nothing_written(tmp_path, customers):
    path = write(tmp_path, "orders.csv", "external_id,customer_external_id,placed_at\no-1,c-1,2025-02-01\n")
    with pytest.raises(CommandError, match="nothing was imported"):
        _, err = import_csv("orders", str(path))
    assert Order.objects.count() == 0


def test_missing_column_message_names_the_column(tmp_path, customers, capsys):
    path = write(tmp_path, "orders.csv", "external_id,customer_external_id,placed_at\no-1,c-1,2025-02-01\n")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_csv", "orders", str(path), stdout=StringIO(), stderr=err)
    assert "line 1: missing required column(s): amount" in err.getvalue()


ORDERS_WITH_BAD_LINES = (
    "external_id,customer_external_id,placed_at,amount\n"
    "o-1,c-1,2025-02-01,10\n"
    "o-2,c-1,2025-02-31,10\n"  # line 3: no such date
    "o-3,c-1,2025-02-03,ten\n"  # line 4: not a number
    "o-4,c-1,2025-02-04,12.5\n"
)


def test_bad_date_and_non_number_amount_are_reported_by_line_and_nothing_written(tmp_path, customers):
    path = write(tmp_path, "orders.csv", ORDERS_WITH_BAD_LINES)
    err = StringIO()
    with pytest.raises(CommandError, match="2 error"):
        call_command("import_csv", "orders", str(path), stdout=StringIO(), stderr=err)
    lines = err.getvalue().splitlines()
    assert any(line.startswith("line 3: placed_at: ") for line in lines)
    assert any(line.startswith("line 4: amount: A valid number is required") for line in lines)
    assert Order.objects.count() == 0


def test_skip_invalid_imports_good_lines_and_writes_rejects(tmp_path, customers):
    path = write(tmp_path, "orders.csv", ORDERS_WITH_BAD_LINES)
    out, err = import_csv("orders", str(path), "--skip-invalid")
    assert "2 created" in out and "2 rejected" in out
    assert set(Order.objects.values_list("external_id", flat=True)) == {"o-1", "o-4"}
    rejects = list(csv.reader((tmp_path / "orders.rejects.csv").open()))
    assert rejects[0] == ["external_id", "customer_external_id", "placed_at", "amount", "errors"]
    assert [row[0] for row in rejects[1:]] == ["o-2", "o-3"]
    assert rejects[1][-1].startswith("line 3: placed_at:")


def test_semicolon_separated_file_is_explained(tmp_path, customers):
    path = write(tmp_path, "orders.csv", "external_id;customer_external_id;placed_at;amount\no-1;c-1;2025-02-01;1\n")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_csv", "orders", str(path), stdout=StringIO(), stderr=err)
    assert "semicolon-separated" in err.getvalue()


def test_unknown_column_is_reported(tmp_path, customers):
    path = write(
        tmp_path, "orders.csv", "external_id,customer_external_id,placed_at,amount,colour\no-1,c-1,2025-02-01,1,red\n"
    )
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_csv", "orders", str(path), stdout=StringIO(), stderr=err)
    assert "unknown column(s): colour" in err.getvalue()


def test_file_that_is_not_utf8_is_reported(tmp_path, customers):
    path = write(tmp_path, "c.csv", "external_id,name\nc-9,Jürgen Müller\n", encoding="latin-1")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_csv", "customers", str(path), stdout=StringIO(), stderr=err)
    assert "not UTF-8" in err.getvalue()
    assert not Customer.objects.filter(external_id="c-9").exists()


def test_row_with_wrong_number_of_fields_is_named(tmp_path, customers):
    path = write(tmp_path, "orders.csv", "external_id,customer_external_id,placed_at,amount\no-1,c-1,2025-02-01\n")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_csv", "orders", str(path), stdout=StringIO(), stderr=err)
    assert "line 2: line: expected 4 fields, found 3" in err.getvalue()


def test_duplicate_ids_across_chunks_of_a_file_are_caught(tmp_path, customers, monkeypatch):
    monkeypatch.setattr("lifecycle.csv_import.CHUNK_ROWS", 2)
    path = write(
        tmp_path,
        "orders.csv",
        "external_id,customer_external_id,placed_at,amount\n"
        "o-1,c-1,2025-02-01,1\no-2,c-1,2025-02-01,1\no-3,c-1,2025-02-01,1\no-1,c-1,2025-02-01,2\n",
    )
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_csv", "orders", str(path), stdout=StringIO(), stderr=err)
    assert "line 5: external_id: Duplicate of line 2." in err.getvalue()
    assert Order.objects.count() == 0


def test_spend_csv_imports(tmp_path):
    path = write(
        tmp_path,
        "spend.csv",
        "channel,campaign_code,period,date,amount\npaid_ads,,month,2025-01-01,1500\n"
        "email,spring,day,2025-01-03,20.50\n",
    )
    out, _ = import_csv("marketing_spend", str(path))
    assert "2 created" in out


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        import_csv("orders", str(tmp_path / "nope.csv"))


def test_skip_invalid_rejects_lines_naming_unknown_customers(tmp_path, customers):
    path = write(
        tmp_path,
        "orders.csv",
        "external_id,customer_external_id,placed_at,amount\no-1,c-1,2025-02-01,1\no-2,ghost,2025-02-01,1\n",
    )
    out, _ = import_csv("orders", str(path), "--skip-invalid")
    assert "1 created" in out and "1 rejected" in out
    assert list(Order.objects.values_list("external_id", flat=True)) == ["o-1"]
    assert "line 3: customer_external_id: Unknown customer 'ghost'" in (tmp_path / "orders.rejects.csv").read_text()
