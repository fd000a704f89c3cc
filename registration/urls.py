from django.urls import path

from registration import staff_views, views, wizard_views

urlpatterns = [
    path("", views.home, name="home"),
    path("welcome/", views.after_sign_in, name="after_sign_in"),
    path("activate/", views.activate, name="activate"),
    path("activate/account/", views.activate_account, name="activate_account"),
    path("home/", views.guardian_home, name="guardian_home"),
    path("student/", views.student_home, name="student_home"),
    path("session/extend/", views.session_extend, name="session_extend"),
    path("register/", wizard_views.registration_start, name="registration_start"),
    path("register/<int:pk>/", wizard_views.registration_wizard, name="registration_resume"),
    path(
        "register/<int:pk>/<str:step>/",
        wizard_views.registration_wizard,
        name="registration_step",
    ),
    path("registrations/<int:pk>/", wizard_views.registration_status, name="registration_status"),
    path(
        "registrations/<int:pk>/confirmation/<int:version>/",
        wizard_views.confirmation_download,
        name="registration_confirmation",
    ),
    path(
        "registrations/<int:pk>/proofs/<int:proof_pk>/",
        wizard_views.proof_download,
        name="registration_proof",
    ),
    path("staff/", staff_views.staff_home, name="staff_home"),
    path("staff/guardians/", staff_views.guardian_search, name="staff_guardians"),
    path("staff/guardians/<int:pk>/", staff_views.guardian_detail, name="staff_guardian"),
    path("staff/custody/<int:pk>/", staff_views.custody_note, name="staff_custody_note"),
    path(
        "staff/guardians/<int:pk>/letter/",
        staff_views.guardian_letter,
        name="staff_guardian_letter",
    ),
    path(
        "staff/guardians/<int:pk>/email-code/",
        staff_views.guardian_email_code,
        name="staff_guardian_email_code",
    ),
    path("staff/activation/", staff_views.activation_overview, name="staff_activation"),
    path("staff/activation/resend/", staff_views.activation_resend, name="staff_activation_resend"),
]
