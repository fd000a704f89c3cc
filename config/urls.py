from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from config.views import healthz

admin.site.site_header = f"{settings.DISTRICT_SHORT_NAME} administration"
admin.site.site_title = settings.DISTRICT_SHORT_NAME
admin.site.index_title = "District records"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("staff/campaigns/", include("workflow.urls")),
    path("", include("registration.urls")),
]
