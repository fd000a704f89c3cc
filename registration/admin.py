"""The district's records in the admin, for registrars and district administrators.

Every change form a member of staff opens, every list they search and every change
they save is written to the audit log. Lists are built for district sizes: foreign
keys are looked up by search, never listed in a drop-down, and large lists do not
count every row.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from simple_history.admin import SimpleHistoryAdmin

from registration import models as m
from workflow.services import audit_record


class AuditedReadsMixin:
    """Writes an audit row for each list a member of staff opens or searches and each
    record they open. Lists are paged without a full count (large tables)."""

    show_full_result_count = False
    list_per_page = 50
    model: Any

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if response.status_code == 200:
            audit_record(
                action="list",
                object_type=self.model._meta.label_lower,
                request=request,
                detail={"query": request.GET.urlencode()[:500]},
            )
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            audit_record(
                action="view",
                object_type=self.model._meta.label_lower,
                object_id=object_id,
                request=request,
            )
        return response


class AuditedAdmin(AuditedReadsMixin, SimpleHistoryAdmin):
    """Writes an audit row for each record opened, list searched and change saved."""

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().history_view(request, object_id, extra_context)
        audit_record(
            action="view",
            object_type=self.model._meta.label_lower,
            object_id=object_id,
            request=request,
            detail={"history": True},
        )
        return response

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # One earlier version of the record, every field shown: a read like the change page.
        response = super().history_form_view(request, object_id, version_id, extra_context)
        if request.method == "GET" and response.status_code == 200:
            audit_record(
                action="view",
                object_type=self.model._meta.label_lower,
                object_id=object_id,
                request=request,
                detail={"history_version": str(version_id)},
            )
        return response

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        results = super().get_search_results(request, queryset, search_term)
        # A look-up field's search (students found by name from a household's page)
        # lists records like the change list does; the change list logs itself.
        match = getattr(request, "resolver_match", None)
        if search_term and match is not None and match.url_name == "autocomplete":
            audit_record(
                action="list",
                object_type=self.model._meta.label_lower,
                request=request,
                detail={"query": search_term[:200], "autocomplete": True},
            )
        return results

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        audit_record(
            action="change" if change else "create",
            obj=obj,
            request=request,
            detail={"fields": sorted(form.changed_data)},
        )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            audit_record(action="create", obj=obj, request=request)
        for obj, fields in formset.changed_objects:
            audit_record(
                action="change", obj=obj, request=request, detail={"fields": sorted(fields)}
            )
        for obj in formset.deleted_objects:
            audit_record(
                action="delete",
                object_type=obj._meta.label_lower,
                object_id=str(obj.pk),
                request=request,
            )

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        audit_record(action="delete", obj=obj, request=request)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            audit_record(action="delete", obj=obj, request=request)
        super().delete_queryset(request, queryset)


@admin.register(m.User)
class ProjectUserAdmin(UserAdmin):
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active", "last_login")
    search_fields = ("email", "first_name", "last_name", "username")
    ordering = ("email",)
    show_full_result_count = False


@admin.register(m.District)
class DistrictAdmin(AuditedAdmin):
    list_display = ("name", "sourced_id", "identifier")
    search_fields = ("name", "sourced_id")


@admin.register(m.School)
class SchoolAdmin(AuditedAdmin):
    list_display = ("name", "identifier", "low_grade", "high_grade", "city", "sourced_id")
    list_filter = ("district", "low_grade", "high_grade")
    search_fields = ("name", "identifier", "sourced_id")


@admin.register(m.AcademicSession)
class AcademicSessionAdmin(AuditedAdmin):
    list_display = ("title", "session_type", "start_date", "end_date", "school_year", "parent")
    list_filter = ("session_type", "school_year")
    search_fields = ("title", "sourced_id")
    raw_id_fields = ("parent",)


@admin.register(m.Course)
class CourseAdmin(AuditedAdmin):
    list_display = ("title", "course_code", "grades", "school", "school_year")
    list_filter = ("school", "school_year")
    list_select_related = ("school", "school_year")
    search_fields = ("title", "course_code", "sourced_id")
    autocomplete_fields = ("school", "district")
    raw_id_fields = ("school_year",)


class TeachingInline(admin.TabularInline):
    model = m.TeachingAssignment
    extra = 0
    autocomplete_fields = ("teacher",)


@admin.register(m.ClassSection)
class ClassSectionAdmin(AuditedAdmin):
    list_display = ("title", "class_code", "class_type", "school", "course", "location")
    list_filter = ("class_type", "school")
    list_select_related = ("school", "course")
    search_fields = ("title", "class_code", "sourced_id")
    autocomplete_fields = ("course", "school")
    filter_horizontal = ("terms",)
    inlines = (TeachingInline,)


@admin.register(m.StaffProfile)
class StaffProfileAdmin(AuditedAdmin):
    list_display = ("__str__", "role", "email", "user", "enabled", "sourced_id")
    list_filter = ("role", "enabled", "schools")
    list_select_related = ("user",)
    search_fields = ("given_name", "family_name", "email", "sourced_id")
    autocomplete_fields = ("user",)
    filter_horizontal = ("schools",)


@admin.register(m.TeachingAssignment)
class TeachingAssignmentAdmin(AuditedAdmin):
    list_display = ("section", "teacher", "is_primary", "begin_date", "end_date")
    list_filter = ("is_primary", "section__school")
    list_select_related = ("section", "teacher")
    search_fields = ("sourced_id", "section__title", "teacher__family_name")
    autocomplete_fields = ("section", "teacher")


@admin.register(m.ClassEnrollment)
class ClassEnrollmentAdmin(AuditedAdmin):
    list_display = ("student", "section", "begin_date", "end_date")
    list_filter = ("section__school",)
    list_select_related = ("student", "section")
    search_fields = ("sourced_id", "student__family_name", "student__sourced_id", "section__title")
    autocomplete_fields = ("section", "student")


class HouseholdGuardianInline(admin.TabularInline):
    model = m.HouseholdGuardian
    extra = 0
    autocomplete_fields = ("guardian",)


class HouseholdStudentInline(admin.TabularInline):
    model = m.HouseholdStudent
    extra = 0
    autocomplete_fields = ("student",)


class HouseholdOfStudentInline(admin.TabularInline):
    model = m.HouseholdStudent
    extra = 0
    autocomplete_fields = ("household",)
    verbose_name_plural = "households"


class EmergencyContactInline(admin.TabularInline):
    model = m.EmergencyContact
    extra = 0


@admin.register(m.Household)
class HouseholdAdmin(AuditedAdmin):
    list_display = ("sourced_id", "street1", "city", "postal_code", "language", "phone")
    list_filter = ("language", "city", "state")
    search_fields = ("sourced_id", "street1", "postal_code", "phone")
    inlines = (HouseholdGuardianInline, HouseholdStudentInline, EmergencyContactInline)


class ContactPointInline(admin.TabularInline):
    model = m.ContactPoint
    extra = 0
    fields = ("kind", "label", "phone", "email", "position", "roster_field")


class ContactPreferenceInline(admin.StackedInline):
    model = m.ContactPreference
    extra = 0
    max_num = 1


class StudentGuardianOfGuardianInline(admin.TabularInline):
    model = m.StudentGuardian
    extra = 0
    autocomplete_fields = ("student",)
    verbose_name_plural = "children"


class StudentGuardianOfStudentInline(admin.TabularInline):
    model = m.StudentGuardian
    extra = 0
    autocomplete_fields = ("guardian",)
    verbose_name_plural = "guardians"


class ActivatedFilter(admin.SimpleListFilter):
    title = "account"
    parameter_name = "activated"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Activated"), ("no", "Not activated")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(user__isnull=False)
        if self.value() == "no":
            return queryset.filter(user__isnull=True)
        return queryset


@admin.register(m.Guardian)
class GuardianAdmin(AuditedAdmin):
    list_display = ("full_name", "roster_role", "enabled", "user", "sourced_id")
    list_filter = ("roster_role", "enabled", ActivatedFilter)
    list_select_related = ("user",)
    search_fields = ("given_name", "family_name", "sourced_id", "contact_points__email")
    autocomplete_fields = ("user",)
    inlines = (ContactPointInline, ContactPreferenceInline, StudentGuardianOfGuardianInline)


class StudentHealthInline(admin.StackedInline):
    model = m.StudentHealth
    extra = 0
    max_num = 1


class ConsentInline(admin.TabularInline):
    model = m.Consent
    extra = 0
    autocomplete_fields = ("guardian",)


@admin.register(m.Student)
class StudentAdmin(AuditedAdmin):
    list_display = (
        "full_name",
        "grade",
        "school",
        "birth_date",
        "state_id",
        "enabled",
        "sourced_id",
    )
    list_filter = ("school", "grade", "enabled", ActivatedFilter)
    list_select_related = ("school",)
    search_fields = ("given_name", "family_name", "sourced_id", "state_id")
    autocomplete_fields = ("school", "user")
    inlines = (
        StudentGuardianOfStudentInline,
        HouseholdOfStudentInline,
        StudentHealthInline,
        ConsentInline,
    )


@admin.register(m.HouseholdGuardian)
class HouseholdGuardianAdmin(AuditedAdmin):
    list_display = ("household", "guardian")
    list_select_related = ("household", "guardian")
    search_fields = ("household__sourced_id", "guardian__family_name", "guardian__sourced_id")
    autocomplete_fields = ("household", "guardian")


@admin.register(m.HouseholdStudent)
class HouseholdStudentAdmin(AuditedAdmin):
    list_display = ("household", "student", "is_primary")
    list_filter = ("is_primary",)
    list_select_related = ("household", "student")
    search_fields = ("household__sourced_id", "student__family_name", "student__sourced_id")
    autocomplete_fields = ("household", "student")


@admin.register(m.StudentGuardian)
class StudentGuardianAdmin(AuditedAdmin):
    list_display = ("student", "guardian", "relationship", "has_education_rights")
    list_filter = ("relationship", "has_education_rights")
    list_select_related = ("student", "guardian")
    search_fields = (
        "student__family_name",
        "student__sourced_id",
        "guardian__family_name",
        "guardian__sourced_id",
    )
    autocomplete_fields = ("student", "guardian")


@admin.register(m.ContactPoint)
class ContactPointAdmin(AuditedAdmin):
    list_display = ("guardian", "kind", "label", "phone", "email", "roster_field")
    list_filter = ("kind", "label", "roster_field")
    list_select_related = ("guardian",)
    search_fields = ("email", "phone", "guardian__family_name", "guardian__sourced_id")
    autocomplete_fields = ("guardian",)


@admin.register(m.ContactPreference)
class ContactPreferenceAdmin(AuditedAdmin):
    list_display = (
        "guardian",
        "emergency_voice",
        "emergency_sms",
        "emergency_email",
        "non_emergency_opt_out",
    )
    list_filter = ("non_emergency_opt_out",)
    list_select_related = ("guardian",)
    search_fields = ("guardian__family_name", "guardian__sourced_id")
    autocomplete_fields = ("guardian",)


@admin.register(m.EmergencyContact)
class EmergencyContactAdmin(AuditedAdmin):
    list_display = ("name", "household", "priority", "relationship", "phone")
    list_filter = ("priority",)
    list_select_related = ("household",)
    search_fields = ("name", "phone", "household__sourced_id")
    autocomplete_fields = ("household",)


@admin.register(m.StudentHealth)
class StudentHealthAdmin(AuditedAdmin):
    list_display = ("student", "updated_at")
    list_select_related = ("student",)
    search_fields = ("student__family_name", "student__sourced_id")
    autocomplete_fields = ("student",)


@admin.register(m.Consent)
class ConsentAdmin(AuditedAdmin):
    list_display = ("student", "kind", "granted", "guardian", "updated_at")
    list_filter = ("kind", "granted")
    list_select_related = ("student", "guardian")
    search_fields = ("student__family_name", "student__sourced_id")
    autocomplete_fields = ("student", "guardian")
