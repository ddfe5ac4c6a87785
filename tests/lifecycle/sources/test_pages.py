"""The sources pages: admins connect a shop with the platform's own credentials, which are stored encrypted and
never shown again; the status page shows the webhook address, progress and deliveries; others see nothing."""

import pytest

from lifecycle.sources.models import ImportState, Platform, Source, SourceDelivery, SourceStatus
from lifecycle.sources.records import DEFAULT_CHANNEL_RULES
from lifecycle.sources.services import channel_rules_format
from tests.pages import table_rows, user_client

pytestmark = pytest.mark.django_db

SECRETS = ("ck_0123456789abcdef", "cs_fedcba9876543210", "whsec-hush")


@pytest.fixture
def admin_client():
    return user_client("ada", "admin")


def form(**fields) -> dict[str, str]:
    return {
        "name": "Woo shop",
        "shop_url": "https://woo.example",
        "currency": "eur",
        "consumer_key": SECRETS[0],
        "consumer_secret": SECRETS[1],
        "webhook_secret": SECRETS[2],
        "id_prefix": "",
        "completed_statuses": "processing, completed",
        "channel_rules": channel_rules_format(DEFAULT_CHANNEL_RULES),
        **fields,
    }


def test_only_admins_see_the_sources(admin_client, marketer, viewer):
    for client in (marketer, viewer):
        assert client.get("/sources/").status_code == 403
        assert client.get("/sources/new/shopify/").status_code == 403
        assert b"/sources/" not in client.get("/campaigns/").content  # no link in the top bar either
    page = admin_client.get("/sources/")
    assert page.status_code == 200
    assert b'href="/sources/new/shopware/"' in page.content


def test_an_admin_connects_a_shop_and_its_secrets_are_never_shown_again(admin_client):
    new = admin_client.get("/sources/new/woocommerce/")
    assert b"processing, completed" in new.content  # the platform's defaults, pre-filled

    response = admin_client.post("/sources/new/woocommerce/", form())
    source = Source.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/sources/{source.pk}/"
    assert (source.platform, source.currency, source.completed_statuses) == (
        Platform.WOOCOMMERCE,
        "EUR",
        ["processing", "completed"],
    )
    assert source.credentials == {"consumer_key": SECRETS[0], "consumer_secret": SECRETS[1]}
    assert source.webhook_secret == SECRETS[2]
    assert source.channel_rules == DEFAULT_CHANNEL_RULES

    detail = admin_client.get(f"/sources/{source.pk}/").content.decode()
    edit = admin_client.get(f"/sources/{source.pk}/edit/").content.decode()
    for page in (detail, edit):
        assert not any(secret in page for secret in SECRETS)
    assert f"http://testserver/api/v1/sources/webhooks/{source.webhook_token}/" in detail
    assert "order.updated" in detail  # the topics to subscribe


def test_an_edit_that_leaves_secrets_empty_keeps_them(admin_client):
    admin_client.post("/sources/new/woocommerce/", form())
    source = Source.objects.get()
    changed = form(name="Woo DE", consumer_key="", consumer_secret="", webhook_secret="")
    assert admin_client.post(f"/sources/{source.pk}/edit/", changed).status_code == 302
    source.refresh_from_db()
    assert source.name == "Woo DE"
    assert source.credentials == {"consumer_key": SECRETS[0], "consumer_secret": SECRETS[1]}
    assert source.webhook_secret == SECRETS[2]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"shop_url": "http://woo.example"}, "Use the shop&#x27;s https:// address"),
        ({"consumer_secret": ""}, "Required."),
        ({"currency": "e1r"}, "Give the ISO 4217 code"),
        ({"channel_rules": "utm_medium equals cpc -> paid_ads\nutm_medium sounds like -> email"}, "Line 2:"),
        ({"channel_rules": "referrer_host contains google. -> billboards"}, "unknown channel billboards"),
    ],
)
def test_a_bad_form_saves_nothing_and_says_why(admin_client, fields, message):
    response = admin_client.post("/sources/new/woocommerce/", form(**fields))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Source.objects.exists()


def test_two_shops_need_their_own_id_prefix(admin_client):
    admin_client.post("/sources/new/woocommerce/", form())
    response = admin_client.post("/sources/new/woocommerce/", form(name="Woo AT"))
    assert response.status_code == 400
    assert "Another source uses this id prefix" in response.content.decode()
    assert admin_client.post("/sources/new/woocommerce/", form(name="Woo AT", id_prefix="at-")).status_code == 302


def test_shopify_takes_a_client_id_and_secret_or_an_access_token(admin_client):
    shopify = form(consumer_key="", consumer_secret="", shop_url="https://shop.myshopify.com")
    refused = admin_client.post("/sources/new/shopify/", {**shopify, "name": "None"})
    assert refused.status_code == 400 and "Required." in refused.content.decode()

    dev_app = {**shopify, "name": "Dev app", "client_id": "app-id", "client_secret": "shpss_x", "id_prefix": "a-"}
    token = {**shopify, "name": "Admin app", "access_token": "shpat_x", "id_prefix": "b-"}
    assert admin_client.post("/sources/new/shopify/", dev_app).status_code == 302
    assert admin_client.post("/sources/new/shopify/", token).status_code == 302
    assert {source.name: source.credentials for source in Source.objects.all()} == {
        "Dev app": {"client_id": "app-id", "client_secret": "shpss_x"},
        "Admin app": {"access_token": "shpat_x"},
    }


def test_the_status_page_shows_progress_and_deliveries(admin_client):
    admin_client.post("/sources/new/woocommerce/", form())
    source = Source.objects.get()
    Source.objects.filter(pk=source.pk).update(
        import_state=ImportState.RUNNING, customers_imported=30, orders_imported=70, import_total=400
    )
    SourceDelivery.objects.create(
        source=source, delivery_id="d-1", topic="order.created", payload={}, state="failed", error="Unknown topic."
    )
    progress = admin_client.get(f"/sources/{source.pk}/progress/").json()
    assert (progress["import_state"], progress["customers_imported"], progress["orders_imported"]) == (
        "running",
        30,
        70,
    )
    assert progress["percent"] == 25
    page = admin_client.get(f"/sources/{source.pk}/").content.decode()
    assert table_rows(page, "delivery-table")[0]["Topic"] == "order.created"
    assert 'value="25"' in page


def test_the_actions_queue_the_import_and_disconnect(admin_client, django_capture_on_commit_callbacks):
    admin_client.post("/sources/new/woocommerce/", form())
    source = Source.objects.get()
    with django_capture_on_commit_callbacks() as queued:
        assert admin_client.post(f"/sources/{source.pk}/import/").status_code == 302
    assert len(queued) == 1
    assert Source.objects.get().import_state == ImportState.QUEUED

    admin_client.post(f"/sources/{source.pk}/disconnect/")
    assert Source.objects.get().status == SourceStatus.DISCONNECTED
    refused = admin_client.post(f"/sources/{source.pk}/import/", follow=True)
    assert "Fix the connection first" in refused.content.decode()
    assert admin_client.post(f"/sources/{source.pk}/nonsense/").status_code == 404
