"""The three roles (Django groups) and the model permissions each one carries.

Groups are created by a migration; their permissions are synced after every migrate so that
models added later are covered without a data migration per model.
"""

from enum import StrEnum

from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import AnonymousUser, Group, Permission, User


class Role(StrEnum):
    VIEWER = "viewer"
    MARKETER = "marketer"
    ADMIN = "admin"


# Each role includes everything of the roles before it.
ROLE_ORDER = [Role.VIEWER, Role.MARKETER, Role.ADMIN]

_DOMAIN_APPS = ["lifecycle", "campaigns", "metrics"]


def role_permissions(role: Role) -> list[Permission]:
    """The permissions a role's group should hold."""
    perms = Permission.objects.all()
    if role == Role.VIEWER:
        return list(perms.filter(content_type__app_label__in=_DOMAIN_APPS, codename__startswith="view_"))
    if role == Role.MARKETER:
        return list(
            perms.filter(content_type__app_label__in=_DOMAIN_APPS, codename__startswith="view_")
            | perms.filter(content_type__app_label="campaigns")
        )
    return list(perms.filter(content_type__app_label__in=[*_DOMAIN_APPS, "clm", "auth", "django_celery_beat"]))


def roles_sync(*, apps=None, using: str = "default", **kwargs) -> None:
    """post_migrate hook: give each role group exactly its permissions."""
    from django.apps import apps as global_apps

    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    for role in ROLE_ORDER:
        group, _ = Group.objects.using(using).get_or_create(name=role.value)
        group.permissions.set(role_permissions(role))


def user_role(user: User | AnonymousUser) -> Role | None:
    """The highest role a user holds; superusers are admins."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    # Asked several times per request: one query, its answer kept on the request's user object (an attribute of
    # CLM's own, which the User model does not declare).
    if not hasattr(user, "_clm_role"):
        names = {group.name for group in user.groups.all()}
        held = [role for role in ROLE_ORDER if role.value in names]
        user._clm_role = held[-1] if held else None  # type: ignore[attr-defined]
    return user._clm_role  # type: ignore[attr-defined]


def user_has_role(user: User | AnonymousUser, role: Role) -> bool:
    held = user_role(user)
    return held is not None and ROLE_ORDER.index(held) >= ROLE_ORDER.index(role)
