"""Requests to addresses that admins type in (webhook destinations): https only, and never to a private, loopback,
link-local or otherwise non-public address (SSRF). The name is resolved, every address it resolves to checked, and
the connection made to the checked address (TLS still verifies the certificate against the name), so a second DNS
answer cannot slip a private address in between.

`CLM_OUTBOUND_ALLOW_LOCAL` (on with DEBUG, off in production) lets development and tests reach http://127.0.0.1.
"""

import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class OutboundRefused(Exception):
    """The address may not be called; the message says why."""


def _local_allowed() -> bool:
    return bool(settings.CLM_OUTBOUND_ALLOW_LOCAL)


def url_problem(url: str) -> str | None:
    """Why the address cannot be a destination, without resolving it (forms say so at once); None if it can."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return _("Give a full address, like https://example.com/hooks/clm.")
    if _local_allowed():
        return None
    if parts.scheme != "https":
        return _("Use an https:// address: the events carry customers' data.")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return None if "." in parts.hostname else _("Use the receiver's public name, not a local one.")
    return None if address.is_global else _("The address points into a private network; CLM sends only to public ones.")


def public_address(host: str, port: int) -> str:
    """An address the name resolves to, after checking that every one is public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundRefused(_("%(host)s cannot be resolved: %(error)s") % {"host": host, "error": exc}) from None
    addresses = [str(info[4][0]) for info in infos]
    if not _local_allowed():
        for address in addresses:
            if not ipaddress.ip_address(address).is_global:
                raise OutboundRefused(
                    _("%(host)s resolves to %(address)s, which is not public: CLM does not send there.")
                    % {"host": host, "address": address}
                )
    return addresses[0]


def outbound_post(client: httpx.Client, url: str, *, content: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST to `url` through `client` (timeouts and TLS verification are the client's), connecting to the checked
    address. Raises OutboundRefused, or httpx's errors when the receiver cannot be reached."""
    problem = url_problem(url)
    if problem:
        raise OutboundRefused(problem)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = public_address(host, port)
    literal = f"[{address}]" if ":" in address else address
    pinned = urlunsplit(parts._replace(netloc=f"{literal}:{port}"))
    return client.post(
        pinned,
        content=content,
        headers={**headers, "Host": parts.netloc.rsplit("@", 1)[-1]},
        extensions={"sni_hostname": host},
    )
