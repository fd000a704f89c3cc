"""Finance's pages, included under ``staff/finance/``."""

from django.urls import path

from finance import views

urlpatterns = [
    path("", views.payout_list, name="staff_finance"),
    path("payouts/<int:pk>/", views.payout_detail, name="staff_finance_payout"),
    path("mismatches/", views.mismatch_list, name="staff_finance_mismatches"),
    path("mismatches/<int:pk>/", views.mismatch_detail, name="staff_finance_mismatch"),
    path(
        "mismatches/<int:pk>/explain/",
        views.mismatch_explain,
        name="staff_finance_mismatch_explain",
    ),
    path("collections/", views.collections, name="staff_finance_collections"),
    path("outstanding/", views.outstanding, name="staff_finance_outstanding"),
    path("refunds/", views.refund_list, name="staff_finance_refunds"),
    path("summary/", views.month_summary, name="staff_finance_summary"),
]
