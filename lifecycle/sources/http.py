"""HTTP to shop platforms: timeouts, rate limits obeyed (429 with Retry-After), retries with backoff on 5xx and
network errors, credentials refused at once (no retry storm)."""

import email.utils
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import httpx

from lifecycle.sources.platforms import CredentialsRejected, PlatformUnavailable

logger = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
ATTEMPTS = 6
# Within `answer_at_once()` a request is tried once: someone is waiting for the answer (the connection check).
_attempts: ContextVar[int] = ContextVar("shop_http_attempts", default=ATTEMPTS)


@contextmanager
def answer_at_once() -> Iterator[None]:
    token = _attempts.set(1)
    try:
        yield
    finally:
        _attempts.reset(token)


BACKOFF_SECONDS = 1.0
MAX_WAIT_SECONDS = 120.0


def retry_after_seconds(value: str | None, default: float) -> float:
    """Retry-After as seconds (it may be a number of seconds or an HTTP date), capped."""
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (email.utils.parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return default
    return min(max(seconds, 0.0), MAX_WAIT_SECONDS)


class ShopHttp:
    """One platform's HTTP session. `sleep` is injectable so tests need not wait."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = httpx.Client(base_url=base_url, headers=headers, auth=auth, timeout=TIMEOUT)
        self.sleep = sleep

    def request(self, method: str, url: str, *, refused: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        """The answer; `refused` names further statuses that mean the credentials were refused (an OAuth token
        endpoint answers a wrong client secret with 400)."""
        attempts = _attempts.get()
        problem, wait = "", 0.0
        for attempt in range(attempts):
            if attempt:
                self.sleep(wait)
            wait = BACKOFF_SECONDS * 2**attempt
            try:
                response = self.client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                problem = f"failed ({exc})"
                logger.warning("%s %s %s", method, url, problem)
                continue
            if response.status_code in (401, 403, *refused):
                raise CredentialsRejected(f"The shop refused the credentials ({response.status_code}).")
            if response.status_code == 429:
                problem, wait = "answered 429", retry_after_seconds(response.headers.get("Retry-After"), wait)
                continue
            if response.status_code >= 500:
                problem = f"answered {response.status_code}"
                logger.warning("%s %s %s", method, url, problem)
                continue
            if response.status_code >= 400:
                raise PlatformUnavailable(f"{method} {url} answered {response.status_code}: {response.text[:300]}")
            return response
        raise PlatformUnavailable(f"{method} {url} {problem}, {attempts} time(s).")

    def close(self) -> None:
        self.client.close()
