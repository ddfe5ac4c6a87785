"""An admin follows an upload's check in a real browser: the progress bar moves without a reload, and the preview
shows once the worker is done."""

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import expect

from lifecycle.sources import uploads
from lifecycle.sources.models import Platform, UploadState
from lifecycle.sources.uploads import upload_check_run, upload_store
from tests.browser.conftest import log_in, screenshot
from tests.lifecycle.sources.csv_exports import a_source, fixture


@pytest.fixture
def admin(transactional_db):
    user = User.objects.create_user("root", password="a-long-password-1")
    user.groups.add(Group.objects.get(name="admin"))
    return user


def test_the_progress_bar_moves_without_a_reload_and_the_preview_follows(
    page, live_server, admin, settings, tmp_path, monkeypatch
):
    settings.DATA_DIR = tmp_path
    monkeypatch.setattr(uploads.source_upload_check, "delay", lambda upload_id: None)  # the test is the worker
    a_source(Platform.SHOPIFY, name="Boutique")
    path = fixture("shopify_orders_export.csv")
    upload = upload_store(file=SimpleUploadedFile(path.name, path.read_bytes()), source=None, zone="UTC", actor=admin)
    assert upload.state == UploadState.CHECKING

    log_in(page, live_server, "root")
    page.goto(f"{live_server.url}/imports/{upload.pk}/")
    assert page.locator("#progress-percent").inner_text() == "0"
    page.evaluate("window.notReloaded = true")

    uploads._progress_write(upload, 40)  # what the worker's check reports as it reads
    expect(page.locator("#progress-percent")).to_have_text("40", timeout=10_000)
    assert page.evaluate("document.getElementById('progress-bar').value") == 40
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "upload-progress")

    upload_check_run(upload_id=upload.pk)  # done: the page reloads itself and shows the preview
    page.wait_for_selector("#preview-counts")
    assert "Preview: nothing is written yet" in page.content()
    assert page.locator("#sample-orders tbody tr").count() == 5
    assert page.errors == []
    screenshot(page, "upload-preview")
