"""History import and sync, whatever the platform: a page and its checkpoint are written together, a stopped import
resumes without writing anything twice, rejected credentials stop at once, a sync asks for what changed."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from lifecycle.models import Order
from lifecycle.sources.models import ImportState, Platform, Source, SourceStatus
from lifecycle.sources.platforms import (
    PLATFORMS,
    CredentialsRejected,
    Page,
    PlatformAdapter,
    PlatformUnavailable,
)
from lifecycle.sources.records import ShopBatch, ShopCustomer, ShopOrder
from lifecycle.sources.services import history_import_queue, source_connection_check
from lifecycle.sources.sync import SYNC_OVERLAP, changes_sync_run, history_import_run

pytestmark = pytest.mark.django_db

MARCH = datetime(2025, 3, 1, tzinfo=UTC)


def page_of_orders(first: int, count: int) -> ShopBatch:
    return ShopBatch(
        orders=[
            ShopOrder(
                id=str(number),
                placed_at=MARCH + timedelta(days=number),
                currency="EUR",
                total=Decimal(10),
                status="paid",
                customer=ShopCustomer(id=f"c{number % 3}"),
            )
            for number in range(first, first + count)
        ]
    )


class FakeShop:
    """Four pages of five orders; `failing_page` answers like a shop that keeps failing there."""

    def __init__(self) -> None:
        self.failing_page: int | None = None
        self.rejects = False
        self.pages_asked: list[int] = []
        self.since_asked: list[datetime] = []

    def connection_check(self) -> None:
        if self.rejects:
            raise CredentialsRejected("The shop refused the credentials (401).")

    def history_page(self, checkpoint: dict) -> Page:
        self.connection_check()
        page = checkpoint.get("page", 1)
        self.pages_asked.append(page)
        if page == self.failing_page:
            raise PlatformUnavailable("GET /orders?page=3 kept failing after 6 attempts.")
        return Page(page_of_orders(page * 10, 5), {"page": page + 1} if page < 4 else None, total=20)

    def changes_page(self, since: datetime, checkpoint: dict) -> Page:
        self.since_asked.append(since)
        return Page(page_of_orders(100, 2), None)


@pytest.fixture
def shop(monkeypatch) -> FakeShop:
    fake = FakeShop()
    adapter = PlatformAdapter(
        key=Platform.WOOCOMMERCE,
        credential_sets=(("consumer_key",),),
        default_completed_statuses=("paid",),
        webhook_topics=(),
        signature_valid=lambda body, headers, secret: False,
        webhook_delivery=lambda headers, payload: None,
        webhook_batch=lambda topic, payload: ShopBatch(),
        client=lambda source: fake,
    )
    monkeypatch.setitem(PLATFORMS, Platform.WOOCOMMERCE, adapter)
    return fake


@pytest.fixture
def source() -> Source:
    return Source.objects.create(
        name="Shop",
        platform=Platform.WOOCOMMERCE,
        shop_url="https://shop.example",
        currency="EUR",
        completed_statuses=["paid"],
    )


def test_an_import_writes_every_page_and_its_progress(shop, source):
    assert history_import_run(source_id=source.pk) == ImportState.DONE
    source.refresh_from_db()
    assert Order.objects.count() == 20
    assert (source.orders_imported, source.import_total, source.import_state, source.status) == (
        20,
        20,
        ImportState.DONE,
        SourceStatus.CONNECTED,
    )
    assert source.import_checkpoint == {}
    assert source.synced_until == source.import_started_at


def test_a_stopped_import_resumes_at_its_checkpoint_and_writes_nothing_twice(shop, source):
    shop.failing_page = 3
    assert history_import_run(source_id=source.pk) == ImportState.FAILED
    source.refresh_from_db()
    assert Order.objects.count() == 10  # pages 1 and 2
    assert source.import_checkpoint == {"page": 3}
    assert (source.status, source.import_state) == (SourceStatus.FAILING, ImportState.FAILED)
    assert "kept failing" in source.status_message

    shop.failing_page = None
    assert history_import_run(source_id=source.pk) == ImportState.DONE
    assert shop.pages_asked == [1, 2, 3, 3, 4]
    assert Order.objects.count() == 20
    source.refresh_from_db()
    assert source.orders_imported == 20


def test_rejected_credentials_stop_the_import_at_once(shop, source):
    shop.rejects = True
    assert history_import_run(source_id=source.pk) == ImportState.FAILED
    source.refresh_from_db()
    assert (source.status, source.status_message) == (SourceStatus.REJECTED, "The shop refused the credentials (401).")
    assert shop.pages_asked == []


def test_a_sync_asks_for_changes_since_the_last_one_with_an_overlap(shop, source):
    assert changes_sync_run(source_id=source.pk) is False  # no sync before the history is in
    history_import_run(source_id=source.pk)
    source.refresh_from_db()
    now = source.import_started_at + timedelta(minutes=15)
    assert changes_sync_run(source_id=source.pk, now=now) is True
    assert shop.since_asked == [source.import_started_at - SYNC_OVERLAP]
    assert Order.objects.count() == 22
    source.refresh_from_db()
    assert source.synced_until == now
    assert changes_sync_run(source_id=source.pk, now=now + timedelta(minutes=15))
    assert shop.since_asked[-1] == now - SYNC_OVERLAP


def test_a_disconnected_source_neither_imports_nor_syncs(shop, source):
    Source.objects.filter(pk=source.pk).update(status=SourceStatus.DISCONNECTED)
    history_import_run(source_id=source.pk)
    assert shop.pages_asked == []
    assert not Order.objects.exists()


def test_a_long_import_runs_in_slices_that_continue_from_the_checkpoint(shop, source):
    # Each slice stops after the page in which its time ran out; the task queues the next.
    assert history_import_run(source_id=source.pk, slice_seconds=0) == ImportState.QUEUED
    source.refresh_from_db()
    assert (source.import_state, source.import_checkpoint, Order.objects.count()) == (
        ImportState.QUEUED,
        {"page": 2},
        5,
    )
    states = [history_import_run(source_id=source.pk, slice_seconds=0) for _ in range(3)]
    assert states == [ImportState.QUEUED, ImportState.QUEUED, ImportState.DONE]
    assert shop.pages_asked == [1, 2, 3, 4]
    assert Order.objects.count() == 20


def test_queueing_resumes_a_stopped_import_and_repeats_a_finished_one(shop, source, django_capture_on_commit_callbacks):
    shop.failing_page = 3
    history_import_run(source_id=source.pk)
    shop.failing_page = None
    with django_capture_on_commit_callbacks() as queued:
        history_import_queue(source=source, actor=None)
    assert len(queued) == 1
    source.refresh_from_db()
    assert (source.import_state, source.import_checkpoint) == (ImportState.QUEUED, {"page": 3})
    history_import_queue(source=source, actor=None)  # already queued: not twice
    assert history_import_run(source_id=source.pk) == ImportState.DONE
    assert history_import_run(source_id=source.pk) == ImportState.DONE  # done: a stray task does nothing
    assert shop.pages_asked == [1, 2, 3, 3, 4]

    source.refresh_from_db()
    history_import_queue(source=source, actor=None)
    source.refresh_from_db()
    assert (source.import_checkpoint, source.orders_imported) == ({}, 0)
    assert history_import_run(source_id=source.pk) == ImportState.DONE
    source.refresh_from_db()
    assert (source.orders_imported, Order.objects.count()) == (20, 20)  # read again, nothing duplicated


def test_an_import_left_running_by_a_killed_worker_can_be_queued_again(shop, source):
    Source.objects.filter(pk=source.pk).update(import_state=ImportState.RUNNING)
    source.refresh_from_db()
    assert history_import_queue(source=source, actor=None).import_state == ImportState.QUEUED


def test_a_shop_that_cannot_be_reached_is_told_at_once_on_the_connection_check(source):
    """An admin waits for the check: one attempt, no backoff (an import retries six times)."""
    Source.objects.filter(pk=source.pk).update(platform=Platform.WOOCOMMERCE, shop_url="https://127.0.0.1:9/")
    source.refresh_from_db()
    started = time.monotonic()
    checked = source_connection_check(source=source)
    assert time.monotonic() - started < 5
    assert checked.status == SourceStatus.FAILING
    assert "1 time(s)" in checked.status_message
