"""Uploading a CSV file in the browser (/imports/): layout told from the header, a preview before anything is written,
the import on the worker (run eagerly here), and every bad input refused with a clear message."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import StopUpload
from django.urls import reverse

from lifecycle.models import Customer, Order
from lifecycle.sources.models import Platform, Source, Upload, UploadState
from lifecycle.sources.upload_views import UploadLimitHandler
from lifecycle.sources.uploads import upload_check_run, uploads_dir, uploads_expire
from tests.language import german
from tests.lifecycle.sources.csv_exports import a_source, copy_with, fixture
from tests.pages import user_client

pytestmark = pytest.mark.django_db

LIST = "/imports/"


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def admin():
    return user_client("root", "admin")


@pytest.fixture
def run_tasks(eager, django_capture_on_commit_callbacks):
    """The check and the import run on commit, in this process."""

    def run(request):
        with django_capture_on_commit_callbacks(execute=True):
            return request()

    return run


def upload(client, path: Path, *, source: Source | None = None, zone: str = "UTC", name: str = ""):
    file = SimpleUploadedFile(name or path.name, path.read_bytes(), content_type="text/csv")
    return client.post(LIST, {"file": file, "source": source.pk if source else "", "timezone": zone})


def uploaded(response) -> Upload:
    assert response.status_code == 302, response.content.decode()[:2000]
    return Upload.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[-1]))


def page(client, item: Upload) -> str:
    response = client.get(reverse("upload-detail", args=[item.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_an_admin_previews_a_shopify_export_then_imports_it_on_the_worker(
    admin, run_tasks, django_assert_max_num_queries
):
    a_source(Platform.SHOPIFY, name="Boutique")  # the only Shopify shop: chosen by itself

    item = uploaded(run_tasks(lambda: upload(admin, fixture("shopify_customers_export.csv"))))

    item.refresh_from_db()
    assert (item.layout, item.source.name, item.state) == ("shopify_customers", "Boutique", UploadState.READY)
    assert item.preview["counts"] == {"customers": {"created": 3}, "orders": {}}
    assert Customer.objects.count() == 0  # a preview writes nothing
    with django_assert_max_num_queries(12):
        html = page(admin, item)
    assert "Shopify customer export" in html and "Preview: nothing is written yet" in html
    assert "7210448301122" in html and "sophie.gallas@example.com" in html  # the first rows as CLM will store them

    run_tasks(lambda: admin.post(reverse("upload-import", args=[item.pk]), {"mode": "atomic"}))

    item.refresh_from_db()
    assert item.state == UploadState.DONE and item.result["counts"]["customers"] == {"created": 3}
    assert Customer.objects.count() == 3
    assert not (uploads_dir() / item.path).exists()  # imported: the file is gone

    orders = uploaded(run_tasks(lambda: upload(admin, fixture("shopify_orders_export.csv"))))
    orders.refresh_from_db()
    # The customers are known now: their orders are theirs; the guest is new.
    assert orders.preview["counts"] == {
        "customers": {"unchanged": 3, "created": 1},
        "orders": {"created": 5},
    }
    assert orders.preview["skipped_count"] == 1 and "line 8: order 5678901234505" in orders.preview["skipped"][0]
    run_tasks(lambda: admin.post(reverse("upload-import", args=[orders.pk]), {"mode": "atomic"}))
    assert Order.objects.count() == 5 and Customer.objects.count() == 4


def test_the_preview_tells_what_would_be_created_updated_or_left_unchanged(admin, run_tasks, tmp_path):
    a_source(Platform.SHOPIFY, name="Boutique")
    first = uploaded(run_tasks(lambda: upload(admin, fixture("shopify_customers_export.csv"))))
    run_tasks(lambda: admin.post(reverse("upload-import", args=[first.pk]), {"mode": "atomic"}))
    changed = copy_with(fixture("shopify_customers_export.csv"), tmp_path / "customers.csv", {"Gallas": "Gallas-Roy"})

    again = uploaded(run_tasks(lambda: upload(admin, changed)))

    again.refresh_from_db()
    assert again.preview["counts"]["customers"] == {"updated": 1, "unchanged": 2}
    html = page(admin, again)
    assert '<td class="number">0</td><td class="number">1</td><td class="number">2</td>' in html


def test_every_error_is_shown_with_line_and_column_and_an_atomic_import_writes_nothing(admin, run_tasks, tmp_path):
    a_source(Platform.SHOPIFY, name="Boutique")
    path = copy_with(fixture("shopify_orders_export.csv"), tmp_path / "orders.csv", {",EUR,39.90,": ",CHF,39.90,"})
    item = uploaded(run_tasks(lambda: upload(admin, path)))

    html = page(admin, item)
    assert '<td class="number">5</td><td>Currency</td><td>CHF is not the shop&#x27;s currency EUR</td>' in html

    response = admin.post(reverse("upload-import", args=[item.pk]), {"mode": "atomic"})
    assert response.status_code == 400
    assert "1 error(s): an all-or-nothing import would write nothing" in response.content.decode()
    assert Order.objects.count() == 0

    run_tasks(lambda: admin.post(reverse("upload-import", args=[item.pk]), {"mode": "skip_invalid"}))
    item.refresh_from_db()
    assert item.state == UploadState.DONE and item.result["error_count"] == 1
    assert Order.objects.count() == 4 and not Order.objects.filter(external_id="5678901234502").exists()


def test_a_file_of_unknown_layout_is_imported_through_a_column_mapping(admin, run_tasks, tmp_path):
    path = tmp_path / "kunden.csv"
    path.write_text("Kunden-Nr;E-Mail;Name\nK1;anna@example.com;Anna\nK2;bert@example.com;Bert\n")
    item = uploaded(upload(admin, path))
    assert item.state == UploadState.NEEDS_MAPPING and item.header == ["Kunden-Nr", "E-Mail", "Name"]
    assert "Map the file's columns" in page(admin, item)

    response = admin.post(reverse("upload-mapping", args=[item.pk]), {"kind": "customers", "field_email": "E-Mail"})
    assert response.status_code == 400  # external_id is required
    mapping = {"kind": "customers", "field_external_id": "Kunden-Nr", "field_email": "E-Mail", "field_name": "Name"}
    run_tasks(lambda: admin.post(reverse("upload-mapping", args=[item.pk]), mapping))

    item.refresh_from_db()
    assert (item.layout, item.state, item.preview["counts"]) == (
        "clm_customers",
        UploadState.READY,
        {"customers": {"created": 2}},
    )
    run_tasks(lambda: admin.post(reverse("upload-import", args=[item.pk]), {"mode": "atomic"}))
    assert sorted(Customer.objects.values_list("external_id", "email")) == [
        ("K1", "anna@example.com"),
        ("K2", "bert@example.com"),
    ]


def test_a_platform_export_asks_for_its_shop_or_makes_a_csv_only_one(admin, run_tasks):
    a_source(Platform.WOOCOMMERCE, name="Woo A", currency="USD")
    a_source(Platform.WOOCOMMERCE, name="Woo B", currency="USD", id_prefix="b-")
    item = uploaded(upload(admin, fixture("woocommerce_orders.csv")))
    assert item.state == UploadState.NEEDS_SOURCE
    assert "Which WooCommerce shop is this export of?" in page(admin, item)

    form = {"new_name": "Woo C", "new_currency": "usd", "new_id_prefix": "c-", "timezone": "America/Phoenix"}
    run_tasks(lambda: admin.post(reverse("upload-source", args=[item.pk]), form))

    item.refresh_from_db()
    assert (item.source.name, item.source.currency, item.source.shop_url, item.state) == (
        "Woo C",
        "USD",
        "",
        UploadState.READY,
    )
    orders = item.preview["sample"]["orders"]
    first = dict(zip(orders["columns"], orders["rows"][0], strict=True))
    assert (first["external_id"], first["placed_at"]) == ("c-4991", "2024-05-31T05:00:00+00:00")  # 22:00 in Phoenix


# --- bad input: nothing written, a clear message -----------------------------------------------------------


def _nothing_kept():
    return not Upload.objects.exists() and not any(uploads_dir().glob("*/*"))


def test_an_export_of_another_platform_is_refused_for_the_chosen_shop(admin):
    shopify = a_source(Platform.SHOPIFY, name="Boutique")

    response = upload(admin, fixture("woocommerce_orders.csv"), source=shopify)

    assert response.status_code == 400
    assert "this looks like a WooCommerce order export, not Shopify" in response.content.decode()
    assert _nothing_kept()


def test_a_file_that_is_not_csv_is_refused(admin, tmp_path):
    workbook = tmp_path / "orders.xlsx"
    workbook.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(300))

    response = upload(admin, workbook)

    assert response.status_code == 400
    assert "this is not a CSV file but a ZIP archive (an Excel .xlsx workbook is one)" in response.content.decode()
    assert _nothing_kept()


def test_a_file_in_another_encoding_is_refused_saying_so(admin, run_tasks, tmp_path):
    a_source(Platform.SHOPIFY, name="Boutique")
    text = fixture("shopify_customers_export.csv").read_text(encoding="utf-8-sig")
    utf16, latin1 = tmp_path / "utf16.csv", tmp_path / "latin1.csv"
    utf16.write_bytes(text.encode("utf-16"))
    latin1.write_bytes(text.encode("latin-1"))

    response = upload(admin, utf16)
    assert response.status_code == 400 and "the file is not UTF-8 encoded but UTF-16" in response.content.decode()
    assert _nothing_kept()

    # A Latin-1 header is plain ASCII: the byte that is not UTF-8 is found by the check, on its line.
    item = uploaded(run_tasks(lambda: upload(admin, latin1)))
    item.refresh_from_db()
    assert item.state == UploadState.FAILED
    assert item.message.startswith("line 3: the file is not UTF-8 encoded (byte 0xFC")
    html = page(admin, item)
    assert "save it as &quot;CSV UTF-8&quot;" in html and 'id="import-form"' not in html
    assert Customer.objects.count() == 0


def test_an_upload_over_the_limit_is_refused_before_it_is_read(admin):
    response = admin.post(LIST, {"file": SimpleUploadedFile("big.csv", b"a,b\n1,2\n")}, CONTENT_LENGTH=str(2 * 1024**3))

    assert response.status_code == 413
    assert "This upload is 2.0\xa0GB; files up to 1.0\xa0GB are taken" in response.content.decode()
    assert _nothing_kept()


def test_an_upload_that_grows_past_the_limit_is_stopped_as_it_arrives(rf, settings):
    """Behind a server that passes a body without a Content-Length, the handler counts the bytes it is given."""
    handler = UploadLimitHandler(rf.post(LIST), limit=10)
    assert handler.receive_data_chunk(b"a,b\n1,2\n", 0) == b"a,b\n1,2\n"
    with pytest.raises(StopUpload):
        handler.receive_data_chunk(b"3,4\n", 8)
    assert handler.refused and handler.received == 12


def test_the_limit_is_a_setting(admin, settings):
    settings.CLM_UPLOAD_MAX_BYTES = 2_000
    response = upload(admin, fixture("shopify_orders_export.csv"))  # 3 kB

    assert response.status_code == 413 and "files up to 2.0\xa0KB are taken" in response.content.decode()
    assert _nothing_kept()


def test_only_admins_upload_and_see_uploads(run_tasks):
    marketer = user_client("mia", "marketer")
    assert marketer.get(LIST).status_code == 403
    assert upload(marketer, fixture("shopify_orders_export.csv")).status_code == 403
    assert _nothing_kept()


def test_an_upload_needs_the_csrf_token(data_dir):
    client = user_client("root", "admin", csrf=True)
    response = client.post(LIST, {"file": SimpleUploadedFile("a.csv", b"external_id\nc1\n"), "timezone": "UTC"})
    assert response.status_code == 403
    assert _nothing_kept()


def test_uploads_nobody_imported_are_deleted_with_their_files_after_the_keep_days(admin, run_tasks, settings):
    settings.CLM_UPLOAD_KEEP_DAYS = 7
    a_source(Platform.SHOPIFY)
    ready = uploaded(run_tasks(lambda: upload(admin, fixture("shopify_customers_export.csv"))))
    imported = uploaded(run_tasks(lambda: upload(admin, fixture("shopify_customers_export.csv"))))
    run_tasks(lambda: admin.post(reverse("upload-import", args=[imported.pk]), {"mode": "atomic"}))
    imported.refresh_from_db()
    assert (ready.state, imported.state) == (UploadState.READY, UploadState.DONE)
    folder = uploads_dir() / Path(ready.path).parent

    assert uploads_expire(now=ready.created_at + timedelta(days=7)) == 0
    assert folder.exists()

    assert uploads_expire(now=ready.created_at + timedelta(days=7, seconds=1)) == 1
    assert not folder.exists()
    assert list(Upload.objects.values_list("pk", flat=True)) == [imported.pk]  # an import stays on the list


def test_the_progress_endpoint_answers_state_and_percent(admin):
    a_source(Platform.SHOPIFY, name="Boutique")
    item = uploaded(upload(admin, fixture("shopify_customers_export.csv")))  # queued, not run: checking

    progress = admin.get(reverse("upload-progress", args=[item.pk])).json()
    assert progress == {"state": "checking", "state_display": "checking", "percent": 0, "working": True}
    assert "js/sources/upload_detail.js" in page(admin, item)

    upload_check_run(upload_id=item.pk)  # what the worker does
    progress = admin.get(reverse("upload-progress", args=[item.pk])).json()
    assert progress == {"state": "ready", "state_display": "ready to import", "percent": 100, "working": False}


def test_the_sources_page_links_to_the_upload(admin):
    assert 'href="/imports/"' in admin.get("/sources/").content.decode()


def test_the_upload_pages_speak_german(admin, run_tasks):
    a_source(Platform.SHOPIFY, name="Boutique")
    item = uploaded(run_tasks(lambda: upload(admin, fixture("shopify_customers_export.csv"))))
    with german(admin):
        listing = admin.get(LIST).content.decode()
        detail = page(admin, item)
    assert "CSV-Datei importieren" in listing and "Hochladen und prüfen" in listing
    assert "Vorschau: noch ist nichts geschrieben" in detail and "bereit zum Import" in detail
