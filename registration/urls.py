from django.urls import path

from registration import views

urlpatterns = [
    path("", views.home, name="home"),
    path("welcome/", views.after_sign_in, name="after_sign_in"),
    path("home/", views.guardian_home, name="guardian_home"),
    path("staff/", views.staff_home, name="staff_home"),
]
