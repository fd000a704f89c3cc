from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from config.views import healthz
from registration import views as registration_views
from workflow import audit_views, quality_views, reminder_views

admin.site.site_header = f"{settings.DISTRICT_SHORT_NAME} administration"
admin.site.site_title = settings.DISTRICT_SHORT_NAME
admin.site.index_title = "District records"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/setlang/", registration_views.language_set, name="set_language"),
    path("payments/", include("payments.urls")),
    path("staff/campaigns/", include("workflow.urls")),
    path("staff/addresses/", include("workflow.address_urls")),
    path("staff/registrations/", include("workflow.review_urls")),
    path("staff/quality/", quality_views.quality_overview, name="staff_quality"),
    path("staff/audit/", audit_views.audit_log, name="staff_audit"),
    path("staff/reminders/", reminder_views.reminders, name="staff_reminders"),
    path("staff/finance/", include("finance.urls")),
    path("staff/", include("payments.staff_urls")),
    path("", include("registration.urls")),
]

handler500 = "config.errors.server_error"
