"""Stage changes become deliveries in the transaction that records them: one INSERT … SELECT per chunk.

The hook runs for every chunk that changed stages (lifecycle.services.customers_classify), except in backfills,
which rewrite the past: receivers are told what happens now. A delivery holds what the change was (model, from,
to, when) and the values of the features of the rules of the stage the customer moved to, as the classification
saw them; the customer's external id is read when it is sent.
"""

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from campaigns.activation.models import Delivery, DeliveryState, Destination, DestinationState, EventType
from lifecycle.models import RunKind, Stage, StageTransition
from lifecycle.rules import classification_queryset, conditions_parse, stored_rules
from lifecycle.services import TransitionsWritten


def stage_change_destinations(model_id: int) -> list[int]:
    """The active destinations taking this model's stage changes."""
    destinations = (
        Destination.objects.filter(state=DestinationState.ACTIVE)
        .filter(Q(lifecycle_models=None) | Q(lifecycle_models=model_id))
        .distinct()
        .values_list("pk", "event_types")
    )
    return [pk for pk, event_types in destinations if EventType.STAGE_CHANGED in event_types]


def _json_object(pairs: list[str]) -> str:
    function = "jsonb_build_object" if connection.vendor == "postgresql" else "json_object"
    return f"{function}({', '.join(pairs)})"


def stage_changes_queue(written: TransitionsWritten) -> None:
    if written.run.kind == RunKind.BACKFILL:
        return
    destination_ids = stage_change_destinations(written.model.pk)
    if not destination_ids:
        return
    stored = written.stored or stored_rules(written.model)
    quote = connection.ops.quote_name
    # Per transition, the customer's features by a correlated subquery: an index lookup each. A join with the whole
    # chunk's aggregate was planned as a nested loop over it on a fresh table's statistics (30 s for 10,000).
    features = classification_queryset(written.model, written.run.as_of, stored=stored).filter(
        pk=RawSQL("t.customer_id", [])
    )
    # Each stage's rules' features, as a JSON object per target stage; the fallback stage has none.
    by_stage: dict[int, dict[str, str]] = {}
    for stage in stored.stages:
        for conditions in stored.by_stage[stage.pk]:
            for condition in conditions_parse(conditions):
                by_stage.setdefault(stage.pk, {})[condition.feature.name] = condition.feature.alias
    aliases = sorted({alias for names in by_stage.values() for alias in names.values()})
    features_sql, features_params = features.values("id", *aliases).query.sql_with_params()
    cases = " ".join(
        f"WHEN {int(stage_id)} THEN "
        + _json_object([f"'{name}', f.{quote(alias)}" for name, alias in sorted(names.items())])
        for stage_id, names in by_stage.items()
    )
    empty = _json_object([])
    chosen = f"CASE t.to_stage_id {cases} ELSE {empty} END" if cases else empty
    features_json = f"COALESCE((SELECT {chosen} FROM ({features_sql}) AS f), {empty})"  # noqa: S608 - compiled SQL
    if connection.vendor != "postgresql":
        features_json = f"json({features_json})"  # SQLite: keep it a JSON value inside the payload
    payload = _json_object(["'model'", "%s", "'from'", "fs.key", "'to'", "ts.key", "'features'", features_json])
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {quote(Delivery._meta.db_table)}
                (destination_id, type, customer_id, occurred_at, payload, state, attempts, next_attempt_at, created_at,
                 last_error)
            SELECT d.id, %s, t.customer_id, t.at, {payload}, %s, 0, %s, %s, ''
            FROM {quote(StageTransition._meta.db_table)} AS t
            JOIN {quote(Stage._meta.db_table)} AS ts ON ts.id = t.to_stage_id
            LEFT JOIN {quote(Stage._meta.db_table)} AS fs ON fs.id = t.from_stage_id
            CROSS JOIN {quote(Destination._meta.db_table)} AS d
            WHERE t.run_id = %s {written.scope_sql.replace("customer_id", "t.customer_id")}
              AND d.id IN ({", ".join(["%s"] * len(destination_ids))})
            ORDER BY t.id, d.id
            """,  # noqa: S608 - quoted table names, Django-compiled SQL and placeholders only
            [
                EventType.STAGE_CHANGED,
                written.model.key,
                *features_params,
                DeliveryState.PENDING,
                now,
                now,
                written.run.pk,
                *written.scope_params,
                *destination_ids,
            ],
        )
    from campaigns.activation.tasks import deliveries_send_on_commit  # the tasks send what this writes

    deliveries_send_on_commit()
