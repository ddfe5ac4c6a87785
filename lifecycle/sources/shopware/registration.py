"""Shopware's app registration: the handshake through which a shop learns the secret it signs webhooks with.

Shopware signs an app's webhooks only with the shop secret the app's backend handed out at registration
(https://developer.shopware.com/docs/guides/plugins/apps/app-base-guide.html, "Setup"); an app without it sends
them unsigned, and CLM refuses unsigned webhooks. So CLM is the backend of a small private app (its manifest is in
docs/SOURCES.md): the manifest's registration URL is the source's registration address, its `<secret>` (the app
secret) is the source's webhook secret, and CLM hands that same secret back as the shop secret.

1. `GET <registration address>?shop-id=…&shop-url=…&timestamp=…`, header `shopware-app-signature`: the hex
   HMAC-SHA256 of the query string, keyed with the app secret. CLM answers `{"proof", "secret",
   "confirmation_url"}`, the proof being the HMAC of shop id + shop URL + the app's name.
2. `POST <confirmation_url>` with the app's own API keys, signed (`shopware-shop-signature`) with the shop secret.
   CLM checks the signature and answers 200; it reads the shop through the integration the admin saved.

A refusal answers `{"error": …}`, which the shop shows to whoever installs the app.
"""

import hashlib
import hmac

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from lifecycle.sources.models import Platform, SourceUnavailable, source_at_address
from lifecycle.sources.shopware.webhooks import signature_valid

APP_NAME = "ClmConnector"  # the manifest's <meta><name>: the proof covers it
MAX_AGE_SECONDS = 600  # a registration request older than this is refused: it hands out the secret


def _hex_hmac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def registration_proof(*, secret: str, shop_id: str, shop_url: str, app_name: str = APP_NAME) -> str:
    return _hex_hmac(secret, shop_id + shop_url + app_name)


def _refusal(status: int, error: str) -> JsonResponse:
    return JsonResponse({"error": error}, status=status)


def _registration(request: HttpRequest, secret: str) -> JsonResponse:
    signature = request.headers.get("shopware-app-signature", "").strip().lower()
    query = request.META.get("QUERY_STRING", "")
    if not signature or not hmac.compare_digest(_hex_hmac(secret, query).encode(), signature.encode()):
        return _refusal(401, "The registration is not signed with this source's webhook secret (the app's <secret>).")
    shop_id, shop_url, timestamp = (request.GET.get(name, "") for name in ("shop-id", "shop-url", "timestamp"))
    if not (shop_id and shop_url and timestamp.isdigit()):
        return _refusal(400, "shop-id, shop-url and timestamp are required.")
    if abs(timezone.now().timestamp() - int(timestamp)) > MAX_AGE_SECONDS:
        return _refusal(401, "The registration request is too old (or the shop's clock is off).")
    return JsonResponse(
        {
            "proof": registration_proof(secret=secret, shop_id=shop_id, shop_url=shop_url),
            "secret": secret,
            "confirmation_url": request.build_absolute_uri(request.path),
        }
    )


@csrf_exempt
@login_not_required
@require_http_methods(["GET", "POST"])
def shopware_registration(request: HttpRequest, token: str) -> JsonResponse:
    try:
        source = source_at_address(token, platform=Platform.SHOPWARE)
    except SourceUnavailable as exc:
        return _refusal(exc.status, exc.message)
    if not source.webhook_secret:
        return _refusal(401, "Save a webhook secret on the source's page first: it is the app's <secret>.")
    secret = str(source.webhook_secret)
    if request.method == "GET":
        return _registration(request, secret)
    if not signature_valid(request.body, request.headers, secret):
        return _refusal(401, "The confirmation is not signed with the shop secret CLM handed out.")
    return JsonResponse({"detail": "Registered: webhooks signed with this secret are taken."})
