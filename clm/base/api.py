"""REST API plumbing shared by every app: API-key authentication, scope permissions, a bounded JSON parser.

The error shape and the batch protocol are in clm.base.api_errors (DRF imports this module while it loads, so
this one cannot import DRF's views)."""

import io
from typing import Any, cast

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework_api_key.permissions import KeyParser

from clm.base.models import ApiKey
from clm.base.roles import Role, user_has_role
from clm.base.services import api_key_mark_used


class ApiKeyUser:
    """The request.user of a call authenticated by an API key (a client, not a person)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.pk = None
        self.username = f"api-key:{api_key.prefix}"

    def __str__(self) -> str:
        return self.username


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Api-Key <key>`; revoked and expired keys are refused at once."""

    keyword = KeyParser.keyword

    def authenticate(self, request) -> tuple[ApiKeyUser, ApiKey] | None:
        key = KeyParser().get(request)
        if key is None:
            return None
        try:
            # The library's manager is typed for its abstract base; the model it returns is ours.
            api_key = cast(ApiKey, ApiKey.objects.get_from_key(key))
        except ApiKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.") from None
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed("API key has expired.")
        api_key_mark_used(api_key=api_key)
        return ApiKeyUser(api_key), api_key

    def authenticate_header(self, request) -> str:
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "clm.base.api.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; create a key with "
            "`manage.py create_api_key NAME --scopes read,write,admin`",
        }


class CanRead(BasePermission):
    """API keys need the read scope; people need any role."""

    message = "This API key lacks the read scope, or your account has no role."

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            return request.auth.scope_read
        return user_has_role(request.user, Role.VIEWER)


class CanWrite(BasePermission):
    """API keys need the write scope; people need the admin role."""

    message = "This API key lacks the write scope, or your account is not an admin."

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            return request.auth.scope_write
        return user_has_role(request.user, Role.ADMIN)


class CanAdmin(BasePermission):
    """Exporting and erasing personal data: API keys need the admin scope; people need the admin role."""

    message = "This API key lacks the admin scope, or your account is not an admin."

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            return request.auth.scope_admin
        return user_has_role(request.user, Role.ADMIN)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


class BoundedJSONParser(JSONParser):
    """JSONParser that refuses bodies over CLM_API_MAX_BODY_BYTES with 413 instead of reading them whole.

    DRF parsers read the request stream directly, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not apply.
    """

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = settings.CLM_API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        declared = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        if declared > limit:
            raise PayloadTooLarge(f"Request body is {declared} bytes; the limit is {limit} bytes.")
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
        try:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:  # json's decoder recurses per nesting level: thousands of `[` exhaust the stack
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
