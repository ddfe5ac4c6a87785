"""Helpers of the dashboard page tests: logged-in clients per role and reading numbers out of a page's HTML."""

import html
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from lifecycle.models import LifecycleModel, Stage


def user_client(name: str, role: str | None, *, csrf: bool = False) -> Client:
    user = User.objects.create_user(name, password="a-long-password-1")
    if role:
        user.groups.add(Group.objects.get(name=role))
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


@pytest.fixture
def marketer() -> Client:
    return user_client("mia", "marketer")


@pytest.fixture
def viewer() -> Client:
    return user_client("vera", "viewer")


def stage(model: LifecycleModel, key: str) -> Stage:
    return Stage.objects.get(model=model, key=key)


def days_ago(days: int):
    return timezone.now() - timedelta(days=days)


def text(fragment: str) -> str:
    """An HTML fragment as a reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def cell_effect(page: str, stage_key: str, channel_key: str) -> dict[str, str]:
    """The effectiveness shown in one cell of the plan matrix: {dt text: dd text}."""
    cell = re.search(rf'<td id="cell-{stage_key}-{channel_key}"[^>]*>(.*?)</td>', page, flags=re.DOTALL).group(1)
    pairs = re.findall(r"<dt>(.*?)</dt>\s*<dd>(.*?)</dd>", cell, flags=re.DOTALL)
    return {text(term): text(value) for term, value in pairs}


def table_rows(page: str, table_id: str) -> list[dict[str, str]]:
    """The body rows of the table `table_id`, each as {column heading: cell text}."""
    table = re.search(rf'<table\b[^>]*id="{table_id}".*?</table>', page, flags=re.DOTALL).group()
    head, body = table.split("<tbody>", 1)
    headings = [text(th) for th in re.findall(r"<th>(.*?)</th>", head, flags=re.DOTALL)]
    return [
        dict(zip(headings, (text(td) for td in re.findall(r"<td>(.*?)</td>", row, flags=re.DOTALL)), strict=True))
        for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.DOTALL)
    ]
