from django.urls import path

from campaigns.activation import apis, views

urlpatterns = [
    path("destinations/", views.destination_list, name="destination-list"),
    path("destinations/<int:destination_id>/", views.destination_detail, name="destination-detail"),
    path("destinations/<int:destination_id>/<str:action>/", views.destination_action, name="destination-action"),
    path("deliveries/<int:delivery_id>/replay/", views.delivery_replay_view, name="delivery-replay"),
]

api_urlpatterns = [
    path("destinations/", apis.DestinationsApi.as_view(), name="api-destinations"),
    path("destinations/<int:destination_id>/", apis.DestinationDetailApi.as_view(), name="api-destination-detail"),
    path("destinations/<int:destination_id>/test/", apis.DestinationTestApi.as_view(), name="api-destination-test"),
    path(
        "destinations/<int:destination_id>/rotate-secret/",
        apis.DestinationSecretApi.as_view(),
        name="api-destination-rotate-secret",
    ),
    path("destinations/<int:destination_id>/deliveries/", apis.DeliveriesApi.as_view(), name="api-deliveries"),
    path("deliveries/<int:delivery_id>/replay/", apis.DeliveryReplayApi.as_view(), name="api-delivery-replay"),
]
