"""District-wide summaries (``workflow.summaries``): pages read the last count, say
when it was made, and a worker counts again once it is older than the maximum age."""

from __future__ import annotations

import datetime

from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from tests.conftest import sign_in
from workflow.models import Registration, Summary
from workflow.summaries import summary_current


def _submitted_cell(html: str) -> str:
    row = html.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    cells = [c.split("</td>")[0] for c in row.split('<td class="number">')[1:]]
    states = [value for value, _label in Registration.State.choices]
    return cells[states.index("submitted")]


def test_the_campaign_list_shows_the_last_count_until_a_worker_counts_again(
    campaign, registrar_user, client, settings, django_capture_on_commit_callbacks
):
    settings.SUMMARY_MAX_AGE_SECONDS = 300
    cache.clear()
    sign_in(client, registrar_user)
    html = client.get(reverse("staff_campaigns")).content.decode()
    assert "Registrations counted on" in html
    assert _submitted_cell(html) == "0"

    Registration.objects.filter(pk=Registration.objects.first().pk).update(state="submitted")
    with django_capture_on_commit_callbacks(execute=True) as queued:
        html = client.get(reverse("staff_campaigns")).content.decode()
    assert _submitted_cell(html) == "0" and queued == []  # counted a moment ago

    Summary.objects.filter(key="campaigns").update(
        taken_at=timezone.now() - datetime.timedelta(minutes=6)
    )
    with django_capture_on_commit_callbacks(execute=True) as queued:
        client.get(reverse("staff_campaigns"))
        client.get(reverse("staff_campaigns"))
    assert len(queued) == 1  # asked once, however many look
    assert _submitted_cell(client.get(reverse("staff_campaigns")).content.decode()) == "1"


def test_a_summary_never_counted_is_counted_at_once(campaign, settings):
    settings.SUMMARY_MAX_AGE_SECONDS = 300
    assert not Summary.objects.filter(key="campaigns").exists()
    counted = summary_current("campaigns")
    total = sum(counted.data[str(campaign.pk)].values())
    assert total == Registration.objects.filter(campaign=campaign).count() > 0


def test_opening_a_campaign_counts_its_registrations_for_its_page(
    campaign, registrar_user, client, settings
):
    settings.SUMMARY_MAX_AGE_SECONDS = 300
    sign_in(client, registrar_user)
    client.get(reverse("staff_campaign", args=[campaign.pk]))
    Summary.objects.filter(key="campaigns").update(data={})  # as if counted before
    response = client.post(reverse("staff_campaign_open", args=[campaign.pk]), follow=True)
    data = Summary.objects.get(key="campaigns").data
    assert sum(data[str(campaign.pk)].values()) == Registration.objects.count()
    assert response.status_code == 200
