"""Staff review of registrations and the export to the SIS, under ``staff/registrations/``."""

from django.urls import path

from workflow import review_views

urlpatterns = [
    path("", review_views.registration_queue, name="staff_registrations"),
    path("export/", review_views.sis_export_view, name="staff_registration_export"),
    path(
        "export/<int:pk>/",
        review_views.sis_export_download,
        name="staff_registration_export_download",
    ),
    path("<int:pk>/", review_views.registration_detail, name="staff_registration"),
    path(
        "<int:pk>/approve/",
        review_views.registration_approve_view,
        name="staff_registration_approve",
    ),
    path(
        "<int:pk>/return/",
        review_views.registration_return_view,
        name="staff_registration_return",
    ),
]
