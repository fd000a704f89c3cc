"""Fees and children for the payment tests (factory_boy)."""

from __future__ import annotations

import factory

from payments.models import Fee
from registration.models import (
    ClassEnrollment,
    ClassSection,
    HouseholdStudent,
    School,
    Student,
)


class FeeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Fee

    kind = Fee.Kind.REQUIRED
    title = factory.Sequence(lambda n: f"Activity fee {n}")
    amount_cents = 4000
    gl_code = "4100-FEES"


class LunchFactory(FeeFactory):
    kind = Fee.Kind.LUNCH_PREPAY
    title = "Lunch account"
    amount_cents = None
    min_amount_cents = 500
    max_amount_cents = 20000
    waivable_for_free_meals = True
    gl_code = "5300-NUTRITION"


class FieldTripFactory(FeeFactory):
    kind = Fee.Kind.FIELD_TRIP
    title = factory.Sequence(lambda n: f"Field trip {n}")
    amount_cents = 1850
    gl_code = "4200-TRIPS"
    section = factory.LazyFunction(lambda: ClassSection.objects.get(sourced_id="cls-hr-3"))


class StudentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Student

    sourced_id = factory.Sequence(lambda n: f"stu-pay-{n:03d}")
    given_name = factory.Sequence(lambda n: f"Child{n}")
    family_name = "García Núñez"
    grade = "01"
    school = factory.LazyFunction(lambda: School.objects.get(sourced_id="sch-elem"))


def child_add(household, *, section_sourced_id: str = "cls-hr-1", **fields) -> Student:
    """A new child of ``household``, in a class."""
    student = StudentFactory(**fields)
    HouseholdStudent.objects.create(household=household, student=student, is_primary=True)
    ClassEnrollment.objects.create(
        sourced_id=f"enr-{student.sourced_id}",
        section=ClassSection.objects.get(sourced_id=section_sourced_id),
        student=student,
    )
    return student
