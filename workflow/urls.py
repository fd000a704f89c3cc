"""The registrar's campaign pages, under ``staff/campaigns/``."""

from django.urls import path

from workflow import views

urlpatterns = [
    path("", views.campaign_list, name="staff_campaigns"),
    path("new/", views.campaign_create, name="staff_campaign_create"),
    path("<int:pk>/", views.campaign_detail, name="staff_campaign"),
    path("<int:pk>/edit/", views.campaign_edit, name="staff_campaign_edit"),
    path("<int:pk>/open/", views.campaign_open_view, name="staff_campaign_open"),
    path(
        "<int:pk>/documents/new/",
        views.acknowledgement_create,
        name="staff_acknowledgement_create",
    ),
    path(
        "<int:pk>/documents/<int:ack_pk>/edit/",
        views.acknowledgement_edit,
        name="staff_acknowledgement_edit",
    ),
    path(
        "<int:pk>/documents/<int:ack_pk>/retire/",
        views.acknowledgement_retire_view,
        name="staff_acknowledgement_retire",
    ),
]
