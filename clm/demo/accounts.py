"""The demo's accounts: one per role, with random passwords kept in a private file (setup_demo prints them)."""

import json
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from clm.base.roles import Role

DEMO_ACCOUNTS = [("admin", Role.ADMIN), ("marketer", Role.MARKETER), ("viewer", Role.VIEWER)]


def demo_accounts_ensure(*, credentials_file: Path) -> list[dict[str, str]]:
    """One demo user per role, with random passwords kept in a private file so they can be shown at every start."""
    known = json.loads(credentials_file.read_text()) if credentials_file.is_file() else []
    by_name = {account["username"]: account for account in known}
    User = get_user_model()
    for username, role in DEMO_ACCOUNTS:
        if username in by_name and User.objects.filter(username=username).exists():
            continue
        password = secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username=username)
        user.set_password(password)
        user.is_staff = role == Role.ADMIN
        user.is_superuser = role == Role.ADMIN
        user.save()
        user.groups.set([Group.objects.get(name=role.value)])
        by_name[username] = {"username": username, "password": password, "role": role.value}
    accounts = [by_name[username] for username, _ in DEMO_ACCOUNTS]
    credentials_file.parent.mkdir(parents=True, exist_ok=True)
    credentials_file.write_text(json.dumps(accounts, indent=2))
    credentials_file.chmod(0o600)
    return accounts
