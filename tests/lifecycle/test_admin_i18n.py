"""The lifecycle admin in German: rule errors, stage deletion refusals and messages are German for a German admin,
English for everyone else; the overview shows the missing heartbeat in German while /health/ stays English; field
labels and feature descriptions are German too."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import translation

from lifecycle.features import ENGAGEMENT_KINDS, FEATURES
from lifecycle.models import Customer, LifecycleModel, Stage
from lifecycle.services import model_reclassify
from lifecycle.templates import template_install
from tests.language import german
from tests.lifecycle import test_admin
from tests.lifecycle.test_admin import NOW, active_rule, change_form_data, inline_rows, rule_data, rule_url, stage

# The admin tests' fixtures: ada (a logged-in admin), delay (the queued runs) and status_model.
ada, delay, status_model = test_admin.ada, test_admin.delay, test_admin.status_model

pytestmark = pytest.mark.django_db


def test_a_german_admin_gets_the_rule_errors_in_german(client, ada, status_model):
    rule = active_rule(status_model)
    rows = [("order_count", ">=", "1"), ("total_spent", ">=", "viel"), ("order_count", "between", "5, 2")]
    with german(client):
        response = client.post(rule_url(rule), rule_data(rule.stage, rows))
    assert response.status_code == 200
    forms = response.context["formset"].forms
    assert forms[1].errors["value"] == ["muss für total_spent eine Zahl sein"]
    assert forms[2].errors["value"] == ["between braucht von ≤ bis; erhalten: [5, 2]"]
    page = response.content.decode()
    assert "Bitte die unten aufgeführten Fehler korrigieren." in page
    assert "≥ mindestens" in page  # the operator choices
    assert "Regel von „" in page and "bearbeiten" in page  # the title
    rule.refresh_from_db()
    assert rule.conditions == [{"feature": "order_count", "operator": ">=", "value": 2}]


def test_a_model_without_fallback_is_refused_in_german(client, ada, status_model):
    LifecycleModel.objects.filter(pk=status_model.pk).update(fallback_stage=None)
    rule = active_rule(status_model)
    with german(client):
        response = client.post(rule_url(rule), rule_data(rule.stage, [("order_count", ">=", "3")]))
    assert response.context["errors"] == ["Modell 'status' braucht eine Auffangstufe unter seinen eigenen Stufen"]


def test_deleting_a_stage_in_use_is_refused_in_german(client, ada, status_model, delay):
    leads = [Customer(external_id=f"lead-{n}", first_seen_at=NOW - timedelta(days=1)) for n in range(1200)]
    Customer.objects.bulk_create(leads)  # with the fixture's "zero", more than a thousand: grouped the German way
    model_reclassify(model=status_model)
    prospect = stage(status_model, "prospect")
    url = reverse("admin:lifecycle_stage_delete", args=[prospect.pk])
    with german(client):
        page = client.get(url).content.decode()
        client.post(url, {"post": "yes"})
    assert "Stufe „Prospect“ ist die Auffangstufe des Modells; zuerst eine andere Auffangstufe wählen." in page
    assert "Stufe „Prospect“ kann nicht gelöscht werden: 1.201 Kunden sind gerade in ihr." in page
    assert Stage.objects.filter(pk=prospect.pk).exists()


def test_deleting_a_stage_in_use_on_the_model_page_is_refused_in_german(client, ada, status_model, delay):
    url = reverse("admin:lifecycle_lifecyclemodel_change", args=[status_model.pk])
    with german(client):
        data = change_form_data(client.get(url))
        row = next(f"stages-{i}" for i in range(inline_rows(data)) if data.get(f"stages-{i}-key") == "active")
        data[f"{row}-DELETE"] = "on"
        response = client.post(url, data)
    errors = str(response.context["inline_admin_formsets"][0].formset.non_form_errors())
    assert "Stufe „Active customer“ kann nicht gelöscht werden: 1 Kunde ist gerade in ihr." in errors
    assert "+ Regel hinzufügen" in response.content.decode()
    assert Stage.objects.filter(model=status_model, key="active").exists()
    delay.assert_not_called()


def test_a_german_request_leaves_german_active_in_the_thread(client, ada, status_model):
    """Without tests/language.py's helpers a German page leaves German active for the rest of the test ..."""
    client.post("/i18n/setlang/", {"language": "de", "next": "/"})
    client.get(rule_url(active_rule(status_model)))
    assert translation.get_language() == "de"


def test_the_next_test_starts_in_the_default_language():
    """... and the autouse fixture in tests/conftest.py puts the default back before the next test (this one runs
    after the one above)."""
    assert translation.get_language() == "en"


def test_the_overview_shows_a_missing_heartbeat_in_german_and_health_stays_english(viewer_client):
    template_install(key="status")
    with german(viewer_client):
        page = viewer_client.get("/models/status/overview/").content.decode()
    assert "noch kein Heartbeat: Laufen Worker und Beat?" in page
    with german(viewer_client):
        health = viewer_client.get("/health/").json()
    assert health["worker"]["detail"] == "no heartbeat yet: are worker and beat running?"


def test_the_model_page_and_the_rule_editor_label_fields_and_features_in_german(client, ada, status_model):
    model_url = reverse("admin:lifecycle_lifecyclemodel_change", args=[status_model.pk])
    with german(client):
        model_page = client.get(model_url).content.decode()
        rule_page = client.get(rule_url(active_rule(status_model))).content.decode()
    assert "Standardmodell" in model_page and "Das Modell, das das Dashboard zuerst zeigt" in model_page
    assert "Auffangstufe" in model_page and "Aktive Modelle klassifizieren jeden Kunden" in model_page
    assert "default model" not in model_page
    days = "ganze Tage seit der letzten abgeschlossenen Bestellung (leer ohne Bestellungen)"
    assert f"days_since_last_order: {days}" in rule_page  # the feature choice of a condition row
    assert f"<dd>{days}</dd>" in rule_page  # the list of features under the editor
    assert "whole days since the last completed order" not in rule_page


def test_the_spelt_out_engagement_kinds_match_the_ones_counted():
    """engagements_last_30d's description names its kinds literally, for the catalogue: it must follow the code."""
    description = FEATURES["engagements_last_30d"].description
    assert description.startswith("touchpoints of kinds " + ", ".join(ENGAGEMENT_KINDS) + " in ")
