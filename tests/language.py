"""The dashboard's language in tests.

LocaleMiddleware activates each request's language in the thread and leaves it active after the response. In a
server every request activates its own, but in the test process the next test may call a service directly, with
no request: after a German page it would get German messages. These helpers put the default language back.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.test import Client
from django.utils import translation


@contextmanager
def language_restored() -> Iterator[None]:
    """Whatever language the block's requests chose, the thread speaks the default language afterwards."""
    try:
        yield
    finally:
        translation.deactivate()


@contextmanager
def german(client: Client) -> Iterator[Client]:
    """The client with German chosen by the header's language switch (a language cookie) for the block."""
    with language_restored():
        client.post("/i18n/setlang/", {"language": "de", "next": "/"})
        yield client
