"""Staff pages about fees, included under ``staff/``: field trips (teachers), the fee
catalog and meal eligibility (finance), payments and refunds (finance)."""

from django.urls import path

from payments import staff_views

urlpatterns = [
    path("field-trips/", staff_views.field_trip_list, name="staff_field_trips"),
    path("field-trips/new/", staff_views.field_trip_new, name="staff_field_trip_create"),
    path("field-trips/<int:pk>/", staff_views.field_trip_detail, name="staff_field_trip"),
    path(
        "field-trips/<int:pk>/cancel/",
        staff_views.field_trip_cancel_view,
        name="staff_field_trip_cancel",
    ),
    path("fees/", staff_views.fee_list, name="staff_fees"),
    path("fees/new/<str:kind>/", staff_views.fee_new, name="staff_fee_create"),
    path("fees/meal-eligibility/", staff_views.meal_eligibility, name="staff_meal_eligibility"),
    path("fees/<int:pk>/edit/", staff_views.fee_edit, name="staff_fee_edit"),
    path(
        "fees/<int:pk>/deactivate/",
        staff_views.fee_deactivate_view,
        name="staff_fee_deactivate",
    ),
    path("payments/", staff_views.payment_list, name="staff_payments"),
    path("payments/<int:pk>/", staff_views.payment_detail, name="staff_payment"),
    path(
        "payments/<int:pk>/lines/<int:line_pk>/refund/",
        staff_views.payment_refund,
        name="staff_payment_refund",
    ),
    path(
        "payments/refunds/<int:pk>/send/",
        staff_views.payment_refund_send,
        name="staff_payment_refund_send",
    ),
    path(
        "payments/households/<int:pk>/",
        staff_views.household_payments,
        name="staff_household_payments",
    ),
]
