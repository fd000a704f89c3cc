"""On PostgreSQL the staff guardian search can use an index for each of its three
parts (names, email, id), so it does not read every guardian of a large district."""

from __future__ import annotations

import pytest
from django.db import connection

from registration.models import Guardian
from registration.selectors import guardian_search

pytestmark = pytest.mark.postgresql


def _plan(query: str) -> str:
    sql, params = guardian_search(Guardian.objects.all(), query).query.sql_with_params()
    with connection.cursor() as cursor:
        # On a few test rows a sequential scan is cheaper: forbid it to see which
        # indexes the planner can use at all.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("analyzed", [False, True])
def test_every_part_of_the_search_has_an_index(sample_district, analyzed):
    if analyzed:
        # With statistics, as the autovacuum daemon may have gathered them meanwhile:
        # the planner's choice must not depend on it.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE registration_guardian, registration_contactpoint")
    plan = _plan("garcia maria")
    assert "registration_guardian_family_name_trgm" in plan, plan
    assert "registration_guardian_given_name_trgm" in plan, plan
    assert "registration_contactpoint_email_upper" in plan, plan
    assert "Seq Scan" not in plan, plan


def test_the_search_finds_by_name_email_and_id(sample_district):
    jose = Guardian.objects.get(sourced_id="par-002")
    email = jose.contact_points.filter(kind="email").first()
    assert email is not None
    for query in (jose.family_name.upper(), email.email.upper(), jose.sourced_id):
        assert jose in guardian_search(Guardian.objects.all(), query), query
