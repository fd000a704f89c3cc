"""Staff pages about address changes, under ``staff/addresses/``."""

from django.urls import path

from workflow import address_views as views

urlpatterns = [
    path("", views.address_queue_view, name="staff_addresses"),
    path("visits/", views.visits_day_view, name="staff_address_visits"),
    path("schedule/", views.visit_schedule_view, name="staff_address_schedule"),
    path("<int:pk>/", views.address_detail, name="staff_address"),
    path(
        "<int:pk>/proofs/<int:proof_pk>/",
        views.address_proof,
        name="staff_address_proof",
    ),
    path("<int:pk>/visit/", views.address_visit_record_view, name="staff_address_visit_record"),
    path("<int:pk>/verify/", views.address_verify_view, name="staff_address_verify"),
    path("<int:pk>/reject/", views.address_reject_view, name="staff_address_reject"),
]
