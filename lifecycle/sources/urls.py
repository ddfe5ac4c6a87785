"""The sources' routes: pages (urlpatterns) and the platforms' webhook endpoint (api_urlpatterns, /api/v1/)."""

from django.urls import path

from lifecycle.sources import upload_views, views
from lifecycle.sources.shopware.registration import shopware_registration
from lifecycle.sources.webhooks import source_webhook

urlpatterns = [
    path("sources/", views.source_list, name="source-list"),
    path("sources/new/<str:platform>/", views.source_new, name="source-new"),
    path("sources/<int:source_id>/", views.source_detail, name="source-detail"),
    path("sources/<int:source_id>/edit/", views.source_edit, name="source-edit"),
    path("sources/<int:source_id>/progress/", views.source_progress, name="source-progress"),
    path("sources/<int:source_id>/<str:action>/", views.source_action, name="source-action"),
    # CSV files uploaded in the browser: preview, then import on the worker.
    path("imports/", upload_views.upload_list, name="upload-list"),
    path("imports/<int:upload_id>/", upload_views.upload_detail, name="upload-detail"),
    path("imports/<int:upload_id>/source/", upload_views.upload_source, name="upload-source"),
    path("imports/<int:upload_id>/mapping/", upload_views.upload_mapping, name="upload-mapping"),
    path("imports/<int:upload_id>/import/", upload_views.upload_import, name="upload-import"),
    path("imports/<int:upload_id>/discard/", upload_views.upload_delete, name="upload-discard"),
    path("imports/<int:upload_id>/progress/", upload_views.upload_progress_json, name="upload-progress"),
]

api_urlpatterns = [
    path("sources/webhooks/<str:token>/", source_webhook, name="source-webhook"),
    # Shopware's app registration: the handshake that gives the shop the secret it signs webhooks with.
    path("sources/shopware/<str:token>/registration/", shopware_registration, name="shopware-registration"),
]
