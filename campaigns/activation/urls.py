from django.urls import path

from campaigns.activation import views

urlpatterns = [
    path("destinations/", views.destination_list, name="destination-list"),
    path("destinations/<int:destination_id>/", views.destination_detail, name="destination-detail"),
    path("destinations/<int:destination_id>/<str:action>/", views.destination_action, name="destination-action"),
    path("deliveries/<int:delivery_id>/replay/", views.delivery_replay_view, name="delivery-replay"),
]
