from __future__ import annotations

from django.urls import path

from payments import guardian_views, receipt_views, test_checkout, views

urlpatterns = [
    path("stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
    path("fees/", guardian_views.fees, name="guardian_fees"),
    path("fees/<int:pk>/", guardian_views.fees_household, name="guardian_fees_household"),
    path("checkouts/<int:pk>/", guardian_views.checkout_status, name="checkout_status"),
    path("test-checkout/<str:session_id>/", test_checkout.test_checkout, name="test_checkout"),
    path("receipts/<int:pk>/", receipt_views.receipt_download, name="receipt_download"),
]
