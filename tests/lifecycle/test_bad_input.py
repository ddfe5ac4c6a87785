"""Bad input to every ingestion endpoint and importer: a clear error naming item (or line) and field, nothing written.

Each API case sends a batch whose item 0 is valid and item 1 is bad, and asserts that no row of any kind was
written (the valid item neither), so "all or nothing" is proven along with the error.
"""

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from campaigns.campaigns.crud import campaign_create
from campaigns.experiments.crud import experiment_create
from lifecycle.cdnow import CdnowFileError, cdnow_import
from lifecycle.csv_import import CsvImportError, csv_import
from lifecycle.ingest import INGEST_KINDS
from lifecycle.models import Customer, LifecycleModel, Stage
from tests.conftest import error_fields
from tests.factories import CustomerFactory, transitions_record
from tests.lifecycle.test_ingest_api import row_counts

pytestmark = pytest.mark.django_db

KINDS = ["customers", "orders", "touchpoints", "feedback", "marketing-spend"]

# One valid item per endpoint; "c-1" exists (fixture `known_customer`).
VALID = {
    "customers": {
        "external_id": "c-new",
        "email": "new@example.com",
        "name": "New",
        "first_seen_at": "2025-01-01",
        "acquisition_channel": "email",
        "referred_by_external_id": "c-1",
    },
    "orders": {
        "external_id": "o-1",
        "customer_external_id": "c-1",
        "placed_at": "2025-03-01T10:00:00Z",
        "amount": "49.90",
        "status": "completed",
        "channel": "email",
        "campaign_code": "spring",
    },
    "touchpoints": {
        "external_id": "t-1",
        "customer_external_id": "c-1",
        "occurred_at": "2025-03-01T10:00:00Z",
        "channel": "email",
        "kind": "email_open",
        "campaign_code": "spring",
        "value": "4",
        "properties": {"subject": "Hi"},
    },
    "feedback": {
        "external_id": "f-1",
        "customer_external_id": "c-1",
        "score": 9,
        "comment": "Great",
        "submitted_at": "2025-03-01T10:00:00Z",
    },
    "marketing-spend": {
        "channel": "email",
        "campaign_code": "spring",
        "period": "day",
        "date": "2025-03-01",
        "amount": "10",
    },
}
ID_FIELD = {
    "customers": "external_id",
    "orders": "external_id",
    "touchpoints": "external_id",
    "feedback": "external_id",
}
TIME_FIELD = {
    "customers": "first_seen_at",
    "orders": "placed_at",
    "touchpoints": "occurred_at",
    "feedback": "submitted_at",
    "marketing-spend": "date",
}
REQUIRED = {
    "customers": ["external_id"],
    "orders": ["external_id", "customer_external_id", "placed_at", "amount"],
    "touchpoints": ["customer_external_id", "occurred_at", "channel", "kind"],
    "feedback": ["customer_external_id", "score", "submitted_at"],
    "marketing-spend": ["channel", "period", "date", "amount"],
}
# (field, longest accepted length) of every free-text field
LENGTHS = {
    "customers": [("external_id", 100), ("name", 200), ("referred_by_external_id", 100)],
    "orders": [("external_id", 100), ("customer_external_id", 100), ("campaign_code", 100)],
    "touchpoints": [("external_id", 100), ("customer_external_id", 100), ("campaign_code", 100)],
    "feedback": [("external_id", 100), ("customer_external_id", 100), ("comment", 5000)],
    "marketing-spend": [("campaign_code", 100)],
}
TEXT_FIELDS = {
    "customers": ["external_id", "name"],
    "orders": ["external_id", "customer_external_id", "campaign_code"],
    "touchpoints": ["external_id", "customer_external_id", "campaign_code"],
    "feedback": ["external_id", "comment"],
    "marketing-spend": ["campaign_code"],
}


def with_(kind: str, /, **fields) -> dict:
    return {**VALID[kind], **fields}


def second_valid(kind: str) -> dict:
    """Another valid item, distinct from VALID[kind] by key."""
    if kind == "marketing-spend":
        return with_(kind, date="2025-03-02")
    return with_(kind, **{ID_FIELD[kind]: "second"})


def bad(kind: str, /, **fields) -> dict:
    """The second valid item with `fields` changed (so that it is no duplicate of the first)."""
    return {**second_valid(kind), **fields}


def without(kind: str, field: str) -> dict:
    return {name: value for name, value in second_valid(kind).items() if name != field}


def post_raw(client, kind: str, body: str | bytes):
    return client.post(f"/api/v1/{kind}/", data=body, content_type="application/json")


def post(client, kind: str, payload):
    return post_raw(client, kind, json.dumps(payload))


@pytest.fixture
def known_customer(db):
    return CustomerFactory(external_id="c-1")


@pytest.fixture
def counts(known_customer):
    return row_counts()


def assert_refused(response, counts, *expected: tuple[int, str]) -> list[dict]:
    """400 naming each expected (index, field) with a message, and no row written."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert "nothing was written" in body["detail"], body
    found = {(error["index"], error["field"]) for error in body["errors"]}
    assert set(expected) <= found, body
    assert all(error["message"] for error in body["errors"])
    assert row_counts() == counts
    return [error for error in body["errors"] if (error["index"], error["field"]) in expected]


def assert_refused_whole(response, counts, status: int, *words: str) -> None:
    """The request as a whole is refused (no item to name): `status` with a `detail` saying why."""
    assert response.status_code == status, response.content
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, detail
    assert row_counts() == counts


def test_every_valid_item_is_accepted(writer, counts):
    """The baseline the cases below break one field of."""
    for kind in KINDS:
        response = post(writer, kind, [VALID[kind], second_valid(kind)])
        assert response.status_code == 201, (kind, response.content)


# --- the request as a whole ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "body",
    [
        '[{"external_id": "x",',  # truncated
        '[{"external_id": "x",}]',  # trailing comma
        "[{'external_id': 'x'}]",  # single quotes
        '{"external_id": "x"} {"external_id": "y"}',  # two documents
        "\ufeff[]",  # a byte-order mark is not JSON
        "\xff\xfe[\x00]\x00",  # UTF-16
    ],
    ids=["truncated", "trailing-comma", "single-quotes", "two-documents", "bom", "utf-16"],
)
def test_malformed_json_is_refused(writer, counts, kind, body):
    if body.startswith("\xff"):
        body = body.encode("latin-1")
    assert_refused_whole(post_raw(writer, kind, body), counts, 400, "JSON parse error")


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_body_is_refused(writer, counts, kind):
    assert_refused_whole(post_raw(writer, kind, ""), counts, 400, "The request body is empty")


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_field_is_named(writer, counts, kind):
    """A misspelt optional field would otherwise be dropped silently."""
    (error,) = assert_refused(post(writer, kind, [VALID[kind], bad(kind, stauts="refunded")]), counts, (1, "stauts"))
    assert error["message"].startswith("Unknown field; the fields are: ")


@pytest.mark.parametrize("kind", KINDS)
def test_json_nested_too_deep_is_refused(writer, counts, kind):
    assert_refused_whole(post_raw(writer, kind, "[" * 100_000 + "]" * 100_000), counts, 400)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("payload", ["a string", 42, None, True])
def test_a_body_that_is_not_an_object_or_list_is_refused(writer, counts, kind, payload):
    assert_refused_whole(post(writer, kind, payload), counts, 400, "Expected a JSON object or a list of objects")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("item", ["a string", 7, None, [1, 2]])
def test_an_item_that_is_not_an_object_is_named(writer, counts, kind, item):
    (error,) = assert_refused(post(writer, kind, [VALID[kind], item]), counts, (1, ""))
    assert error["message"].startswith("Expected an object")


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_batch_is_refused(writer, counts, kind):
    assert_refused_whole(post(writer, kind, []), counts, 400, "empty")


@pytest.mark.parametrize("kind", KINDS)
def test_more_than_1000_items_are_refused(writer, counts, kind):
    batch = [second_valid(kind)] * 1001
    assert_refused_whole(post(writer, kind, batch), counts, 400, "at most 1000 items", "1001")


@pytest.mark.parametrize("kind", KINDS)
@override_settings(CLM_API_MAX_BODY_BYTES=2000)
def test_an_oversized_body_is_refused_with_413(writer, counts, kind):
    batch = [with_(kind, campaign_code=f"code-{i}") for i in range(30)]
    assert len(json.dumps(batch)) > 2000
    assert_refused_whole(post(writer, kind, batch), counts, 413, "limit is 2000 bytes")


# --- NaN and Infinity -----------------------------------------------------------------------------

NUMBER_FIELD = {
    "customers": "name",
    "orders": "amount",
    "touchpoints": "value",
    "feedback": "score",
    "marketing-spend": "amount",
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_json_tokens_are_refused(writer, counts, kind, token):
    """Python's json module accepts these non-JSON tokens by default; the API does not."""
    field = NUMBER_FIELD[kind]
    body = json.dumps([VALID[kind], bad(kind, **{field: "__TOKEN__"})]).replace('"__TOKEN__"', token)
    assert_refused_whole(post_raw(writer, kind, body), counts, 400, "JSON parse error", token)


@pytest.mark.parametrize("kind", ["orders", "touchpoints", "feedback", "marketing-spend"])
@pytest.mark.parametrize("value", ["NaN", "nan", "Infinity", "-Infinity", "inf", "sNaN", 1e400, -1e400])
def test_nan_and_infinity_as_strings_or_overflowing_numbers_are_refused(writer, counts, kind, value):
    field = NUMBER_FIELD[kind]
    # 1e400 is written as a JSON number that overflows a float to infinity on parsing.
    body = json.dumps([VALID[kind], bad(kind, **{field: "__VALUE__"})]).replace('"__VALUE__"', _json_number(value))
    assert_refused(post_raw(writer, kind, body), counts, (1, field))


def _json_number(value) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    return "1e400" if value > 0 else "-1e400"


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_and_infinity_inside_touchpoint_properties_are_refused(writer, counts, value):
    body = json.dumps([VALID["touchpoints"], bad("touchpoints", properties={"x": value})])
    assert_refused_whole(post_raw(writer, "touchpoints", body), counts, 400, "JSON parse error")
    overflow = json.dumps([VALID["touchpoints"], bad("touchpoints", properties={"x": "__BIG__"})])
    assert_refused(post_raw(writer, "touchpoints", overflow.replace('"__BIG__"', "1e400")), counts, (1, "properties"))


# --- fields ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "field"), [(kind, field) for kind in KINDS for field in REQUIRED[kind]])
def test_a_missing_required_field_is_named(writer, counts, kind, field):
    (error,) = assert_refused(post(writer, kind, [VALID[kind], without(kind, field)]), counts, (1, field))
    assert error["message"] == "This field is required."


@pytest.mark.parametrize(("kind", "field"), [(kind, field) for kind in KINDS for field in REQUIRED[kind]])
def test_a_null_required_field_is_named(writer, counts, kind, field):
    assert_refused(post(writer, kind, [VALID[kind], bad(kind, **{field: None})]), counts, (1, field))


WRONG_TYPES = [
    ("customers", "external_id", ["c-x"]),
    ("customers", "external_id", {"id": "c-x"}),
    ("customers", "external_id", True),
    ("customers", "email", 42),
    ("customers", "first_seen_at", 1735689600),
    ("customers", "acquisition_channel", 3),
    ("orders", "amount", [10]),
    ("orders", "amount", True),
    ("orders", "amount", {"value": 10}),
    ("orders", "placed_at", 1735689600),
    ("orders", "create_customer", "perhaps"),
    ("orders", "status", 1),
    ("orders", "customer_external_id", {"id": "c-1"}),
    ("touchpoints", "properties", [1, 2]),
    ("touchpoints", "properties", "not json"),
    ("touchpoints", "value", "abc"),
    ("touchpoints", "kind", 3),
    ("feedback", "score", "ten"),
    ("feedback", "score", 9.5),
    ("feedback", "score", True),
    ("feedback", "comment", ["Great"]),
    ("marketing-spend", "amount", {}),
    ("marketing-spend", "period", 1),
    ("marketing-spend", "date", 20250301),
]


@pytest.mark.parametrize(("kind", "field", "value"), WRONG_TYPES)
def test_a_value_of_the_wrong_type_is_named(writer, counts, kind, field, value):
    assert_refused(post(writer, kind, [VALID[kind], bad(kind, **{field: value})]), counts, (1, field))


UNKNOWN_CHOICES = [
    ("customers", "acquisition_channel", "carrier_pigeon"),
    ("orders", "status", "shipped"),
    ("orders", "status", "COMPLETED"),
    ("orders", "channel", "carrier_pigeon"),
    ("touchpoints", "kind", "telepathy"),
    ("touchpoints", "channel", "carrier_pigeon"),
    ("touchpoints", "channel", ""),
    ("marketing-spend", "period", "week"),
    ("marketing-spend", "channel", "carrier_pigeon"),
]


@pytest.mark.parametrize(("kind", "field", "value"), UNKNOWN_CHOICES)
def test_an_unknown_enum_value_is_named_with_the_known_ones(writer, counts, kind, field, value):
    (error,) = assert_refused(post(writer, kind, [VALID[kind], bad(kind, **{field: value})]), counts, (1, field))
    assert repr(value) in error["message"] or f'"{value}"' in error["message"], error


BAD_NUMBERS = [
    ("orders", "amount", "-0.01"),
    ("orders", "amount", -5),
    ("orders", "amount", "abc"),
    ("orders", "amount", ""),
    ("orders", "amount", "1,50"),
    ("orders", "amount", "12.345"),
    ("orders", "amount", "1e12"),
    ("marketing-spend", "amount", "-1"),
    ("marketing-spend", "amount", "ten"),
    ("touchpoints", "value", "1/2"),
    ("feedback", "score", -1),
    ("feedback", "score", 11),
    ("feedback", "score", ""),
]


@pytest.mark.parametrize(("kind", "field", "value"), BAD_NUMBERS)
def test_a_negative_or_non_numeric_amount_is_named(writer, counts, kind, field, value):
    assert_refused(post(writer, kind, [VALID[kind], bad(kind, **{field: value})]), counts, (1, field))


BAD_DATES = [
    "yesterday",
    "2025-02-30",
    "2025-13-01",
    "01/03/2025",
    "2025-03-01T25:00:00Z",
    "2025-03-01T10:00:00+25:00",
    "",
    "1969-12-31",
    "1969-12-31T23:59:59Z",
    "0001-01-01",
    "0001-01-01T00:00:00+01:00",  # before year 1 once in UTC
    "9999-12-31T23:59:59-01:00",  # after year 9999 once in UTC
    "2999-01-01",
    "in three days",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", BAD_DATES)
def test_an_unparseable_far_future_or_pre_1970_date_is_named(writer, counts, kind, value):
    if value == "in three days":
        value = (timezone.now() + timedelta(days=3)).date().isoformat()
    field = TIME_FIELD[kind]
    assert_refused(post(writer, kind, [VALID[kind], bad(kind, **{field: value})]), counts, (1, field))


@pytest.mark.parametrize("kind", KINDS)
def test_the_first_moment_of_1970_and_today_are_accepted(writer, counts, kind):
    field = TIME_FIELD[kind]
    early = "1970-01-01" if kind == "marketing-spend" else "1970-01-01T00:00:00Z"
    today = timezone.now().date().isoformat()
    items = [with_(kind, **{field: early}), {**second_valid(kind), field: today}]
    assert post(writer, kind, items).status_code == 201


# --- the batch ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_duplicate_key_in_a_batch_is_named(writer, counts, kind):
    changes = {"customers": {"name": "Other"}, "feedback": {"comment": "Other"}}.get(kind, {"amount": "99"})
    changed = with_(kind, **changes if kind != "touchpoints" else {"value": "5"})
    key_field = {"marketing-spend": ""}.get(kind, "external_id")
    (error,) = assert_refused(post(writer, kind, [VALID[kind], second_valid(kind), changed]), counts, (2, key_field))
    assert error["message"] == "Duplicate of item 0."


@pytest.mark.parametrize("kind", ["touchpoints", "feedback"])
def test_the_same_event_twice_without_id_is_a_duplicate(writer, counts, kind):
    event = without(kind, "external_id")
    (error,) = assert_refused(post(writer, kind, [event, second_valid(kind), event]), counts, (2, "external_id"))
    assert error["message"] == "Duplicate of item 0."


@pytest.mark.parametrize("kind", ["orders", "touchpoints", "feedback"])
def test_an_unknown_customer_is_named(writer, counts, kind):
    (error,) = assert_refused(
        post(writer, kind, [VALID[kind], bad(kind, customer_external_id="ghost")]),
        counts,
        (1, "customer_external_id"),
    )
    assert "Unknown customer 'ghost'" in error["message"]


def test_an_unknown_referrer_is_named(writer, counts):
    (error,) = assert_refused(
        post(
            writer,
            "customers",
            [VALID["customers"], bad("customers", referred_by_external_id="ghost")],
        ),
        counts,
        (1, "referred_by_external_id"),
    )
    assert "Unknown customer 'ghost'" in error["message"]


@pytest.mark.parametrize("kind", ["orders", "touchpoints", "marketing-spend"])
def test_an_unknown_campaign_code_is_accepted_as_the_shops_label(writer, counts, kind):
    """Campaign codes are the shop's labels (like a UTM parameter, SPEC §2), not references: data may arrive
    before anyone creates the campaign, which then finds its orders by code."""
    response = post(writer, kind, with_(kind, campaign_code="never-created"))
    assert response.status_code == 201


# --- strings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "field", "limit"), [(k, f, n) for k in KINDS for f, n in LENGTHS[k]])
def test_a_string_over_its_field_length_is_named(writer, counts, kind, field, limit):
    (error,) = assert_refused(
        post(writer, kind, [VALID[kind], bad(kind, **{field: "x" * (limit + 1)})]), counts, (1, field)
    )
    assert str(limit) in error["message"]


@pytest.mark.parametrize(("kind", "field", "limit"), [(k, f, n) for k in KINDS for f, n in LENGTHS[k]])
def test_a_string_of_exactly_the_field_length_is_accepted(writer, counts, kind, field, limit):
    value = "é" * limit  # characters, not bytes
    if field in ("customer_external_id", "referred_by_external_id"):
        CustomerFactory(external_id=value)
    response = post(writer, kind, with_(kind, **{field: value}))
    assert response.status_code == 201, response.content


def test_an_email_over_254_characters_or_malformed_is_named(writer, counts):
    long_email = "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".de"
    response = post(
        writer,
        "customers",
        [
            VALID["customers"],
            with_("customers", external_id="c-8", email=long_email),
            with_("customers", external_id="c-9", email="not-an-email"),
        ],
    )
    assert_refused(response, counts, (1, "email"), (2, "email"))


UNICODE = [
    "Zoë 👩‍👩‍👧 🇩🇪",  # combining-free accents, a ZWJ family, a flag
    "שלום עולם",  # Hebrew, right to left
    "مرحبا بالعالم",  # Arabic, right to left
    "abc\u202edef",  # a right-to-left override inside left-to-right text
    "e\u0301\u200b\ufeff",  # a combining accent, a zero-width space, a zero-width no-break space
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠜎",  # outside the Basic Multilingual Plane
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("text", UNICODE)
def test_emoji_and_right_to_left_text_are_stored_intact(writer, counts, kind, text):
    fields = {field: f"{text}-{field}" for field in TEXT_FIELDS[kind]}
    if "customer_external_id" in fields:
        CustomerFactory(external_id=fields["customer_external_id"])
    if kind == "touchpoints":
        fields["properties"] = {text: [text]}

    response = post(writer, kind, with_(kind, **fields))

    assert response.status_code == 201, response.content
    model = INGEST_KINDS[kind.replace("-", "_")].model
    row = model.objects.get(pk=response.json()["results"][0]["id"])
    for field, value in fields.items():
        stored = row.customer.external_id if field == "customer_external_id" else getattr(row, field)
        assert stored == value


@pytest.mark.parametrize(("kind", "field"), [(kind, field) for kind in KINDS for field in TEXT_FIELDS[kind]])
@pytest.mark.parametrize("char", ["\x00", "\ud800"], ids=["nul", "lone-surrogate"])
def test_a_nul_byte_or_lone_surrogate_is_named(writer, counts, kind, field, char):
    """PostgreSQL cannot store NUL in text, and a lone surrogate is not encodable: both are refused, not a 500."""
    (error,) = assert_refused(
        post(writer, kind, [VALID[kind], bad(kind, **{field: f"ab{char}cd"})]), counts, (1, field)
    )
    assert "character" in error["message"].lower()


@pytest.mark.parametrize("char", ["\x00", "\ud800"], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize("where", ["key", "value", "nested"])
def test_a_nul_byte_or_lone_surrogate_in_touchpoint_properties_is_named(writer, counts, char, where):
    properties = {"key": {f"a{char}": 1}, "value": {"a": f"b{char}"}, "nested": {"a": [{"b": [f"c{char}"]}]}}[where]
    assert_refused(
        post(writer, "touchpoints", [VALID["touchpoints"], bad("touchpoints", properties=properties)]),
        counts,
        (1, "properties"),
    )


def test_a_nul_byte_in_a_field_name_is_named(writer, counts):
    (error,) = assert_refused(
        post(writer, "orders", [VALID["orders"], bad("orders", **{"ext\x00": "x"})]), counts, (1, "ext\x00")
    )
    assert error["message"].startswith("Unknown field")


# --- CSV ------------------------------------------------------------------------------------------

ORDERS_HEADER = "external_id,customer_external_id,placed_at,amount\n"


def write_bytes(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    return path


def csv_errors(path: Path, kind: str = "orders") -> list[str]:
    with pytest.raises(CsvImportError) as excinfo:
        csv_import(kind=INGEST_KINDS[kind], path=path)
    return excinfo.value.errors


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "external_id;customer_external_id;placed_at;amount\no-1;c-1;2025-02-01;1\n",
            "line 1: the header looks semicolon-separated",
        ),
        ("external_id\tcustomer_external_id\tplaced_at\tamount\n", "line 1: the header looks tab-separated"),
        ("external_id|customer_external_id|placed_at|amount\n", "line 1: the header looks pipe-separated"),
        ("id,customer,date,amount\no-1,c-1,2025-02-01,1\n", "line 1: unknown column(s): id, customer, date"),
        ("external_id,customer_external_id,amount\no-1,c-1,1\n", "line 1: missing required column(s): placed_at"),
        (ORDERS_HEADER.replace("amount", "amount,amount"), "line 1: duplicated column(s): amount"),
        ("", "line 1: the file is empty"),
        ("o-1,c-1,2025-02-01,1\n", "line 1: unknown column(s): o-1, c-1, 2025-02-01, 1"),  # no header line
    ],
    ids=["semicolon", "tab", "pipe", "wrong-names", "missing", "duplicated", "empty", "no-header"],
)
def test_a_csv_with_a_wrong_delimiter_or_header_is_explained(tmp_path, counts, content, expected):
    errors = csv_errors(write_bytes(tmp_path, content.encode()))
    assert any(error.startswith(expected) for error in errors), errors
    assert row_counts() == counts


def test_a_csv_row_split_by_another_delimiter_is_named_by_line(tmp_path, counts):
    errors = csv_errors(
        write_bytes(tmp_path, (ORDERS_HEADER + "o-1,c-1,2025-02-01,1\no-2;c-1;2025-02-01;1\n").encode())
    )
    assert errors == ["line 3: line: expected 4 fields, found 1"]
    assert row_counts() == counts


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_a_utf16_or_utf32_csv_is_explained(tmp_path, counts, encoding):
    path = write_bytes(tmp_path, (ORDERS_HEADER + "o-1,c-1,2025-02-01,1\n").encode(encoding))
    (error,) = csv_errors(path)
    assert error.startswith("line 1: the file is not UTF-8 encoded"), error
    assert "UTF-16" in error or "UTF-32" in error
    assert row_counts() == counts


def test_latin1_bytes_are_named_by_their_line_even_far_into_the_file(tmp_path, counts):
    good = "".join(f"o-{i},c-1,2025-02-01,1\n" for i in range(2000))  # far beyond one read buffer
    path = write_bytes(tmp_path, (ORDERS_HEADER + good).encode() + "o-x,Jürgen,2025-02-01,1\n".encode("latin-1"))
    (error,) = csv_errors(path)
    assert error.startswith("line 2002: the file is not UTF-8 encoded"), error
    assert row_counts() == counts


def test_a_utf8_csv_with_a_bom_and_crlf_line_ends_is_read(tmp_path, counts):
    path = write_bytes(tmp_path, ("\ufeff" + ORDERS_HEADER + "o-1,c-1,2025-02-01,1\n").replace("\n", "\r\n").encode())
    result = csv_import(kind=INGEST_KINDS["orders"], path=path)
    assert result.created == 1


CSV_BAD_VALUES = [
    ("o-2,c-1,2025-02-01,-1", "amount"),
    ("o-2,c-1,2025-02-01,NaN", "amount"),
    ("o-2,c-1,2025-02-01,Infinity", "amount"),
    ("o-2,c-1,2025-02-01,ten", "amount"),
    ("o-2,c-1,2025-02-30,1", "placed_at"),
    ("o-2,c-1,2999-01-01,1", "placed_at"),
    ("o-2,c-1,1969-12-31,1", "placed_at"),
    ("o-2,ghost,2025-02-01,1", "customer_external_id"),
    ("o-1,c-1,2025-02-01,2", "external_id"),  # duplicate of line 2
    ("o-2,c-1,,1", "placed_at"),  # missing
    (f"{'x' * 101},c-1,2025-02-01,1", "external_id"),
    ("o-\x002,c-1,2025-02-01,1", "external_id"),
]


@pytest.mark.parametrize(("line", "field"), CSV_BAD_VALUES)
def test_a_bad_csv_value_is_named_by_line_and_field(tmp_path, counts, line, field):
    path = write_bytes(tmp_path, (ORDERS_HEADER + "o-1,c-1,2025-02-01,1\n" + line + "\n").encode())
    errors = csv_errors(path)
    assert any(error.startswith(f"line 3: {field}: ") for error in errors), errors
    assert row_counts() == counts


def test_csv_touchpoint_properties_with_nul_or_non_finite_numbers_are_named(tmp_path, counts):
    header = "customer_external_id,occurred_at,channel,kind,properties\n"
    lines = ['c-1,2025-02-01,email,email_open,"{""a"": ""\\u0000""}"', 'c-1,2025-02-02,email,email_open,"{""a"": NaN}"']
    errors = csv_errors(write_bytes(tmp_path, (header + "\n".join(lines) + "\n").encode()), "touchpoints")
    assert [error.split(":")[0:2] for error in errors] == [["line 2", " properties"], ["line 3", " properties"]]
    assert row_counts() == counts


def test_csv_emoji_and_rtl_are_stored_intact(tmp_path, counts):
    path = write_bytes(tmp_path, "external_id,name\nc-9,שלום 👋 مرحبا\n".encode())
    csv_import(kind=INGEST_KINDS["customers"], path=path)
    assert Customer.objects.get(external_id="c-9").name == "שלום 👋 مرحبا"


# --- CDNOW ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (" 00002 19970101  1   -3.00", "line 2: dollar_value: '-3.00' must be a non-negative number"),
        (" 00002 19970101  1   NaN", "line 2: dollar_value: 'NaN' must be a non-negative number"),
        (" 00002 19970101  1   Infinity", "line 2: dollar_value: 'Infinity' must be a non-negative number"),
        (" 00002 19970101  1   abc", "line 2: dollar_value: 'abc' is not a number"),
        (" 00002 19971345  1   1.00", "line 2: date: '19971345' is not a YYYYMMDD date"),
        (" 00002 19691231  1   1.00", "line 2: date: '19691231' is before 1970-01-01"),
        (" 00002 29990101  1   1.00", "line 2: date: '29990101' is in the future"),
        (" 00002 19970101  1", "line 2: expected 4 columns, found 3"),
    ],
)
def test_a_bad_cdnow_line_is_named_and_nothing_is_written(tmp_path, counts, line, expected):
    path = tmp_path / "cdnow.txt"
    path.write_text(" 00001 19970101  1   11.77\n" + line + "\n")
    with pytest.raises(CdnowFileError) as excinfo:
        cdnow_import(path=path)
    assert expected in str(excinfo.value).splitlines()
    assert row_counts() == counts


def test_a_cdnow_file_with_non_ascii_bytes_is_named_by_line(tmp_path, counts):
    path = tmp_path / "cdnow.txt"
    path.write_bytes(b" 00001 19970101  1   11.77\n 00002 19970101  1   \xa312.00\n")
    with pytest.raises(CdnowFileError, match="line 2: not an ASCII text file"):
        cdnow_import(path=path)
    assert row_counts() == counts


# --- filters: unparseable and reversed dates on every API read and page that takes dates ----------------

DATE_PARAMETERS = {
    "as_of",
    "start",
    "end",
    "cohort_start",
    "cohort_end",
    "changed_since",
    "changed_before",
    "since",
    "calibration_end",
    "holdout_end",
}
# (earlier, later): a window whose later bound is not after its earlier one
DATE_WINDOWS = [("cohort_start", "cohort_end"), ("start", "end"), ("changed_since", "changed_before")]
# What the drill-downs require besides dates, and values for path parameters (seeded by `filters_history`).
REQUIRED_QUERY = {
    "stage": "new",
    "to_stage": "new",
    "cohort": "2024-01",
    "month": 1,
    "segment": "champions",
    "category": "new",
    "period": "2024-02",
    "calibration_end": "2024-03-31",
}


def _dated_reads() -> list[tuple[str, set[str]]]:
    """Every GET operation of the API schema with date query parameters: (path, parameter names)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    reads = []
    for path, operations in schema["paths"].items():
        names = {p["name"] for p in operations.get("get", {}).get("parameters", []) if p["in"] == "query"}
        if names & DATE_PARAMETERS:
            reads.append((path, names))
    return reads


DATED_READS = _dated_reads()


@pytest.fixture
def filters_history(known_customer):
    model = LifecycleModel.objects.get(key="status")
    transitions_record(model, known_customer, [("prospect", "2024-01-05"), ("new", "2024-01-10")])
    campaign = campaign_create(
        code="spring",
        name="Spring",
        channel="email",
        model="status",
        stages=["new"],
        start_date=date(2024, 1, 1),
        end_date=date(2024, 3, 31),
        budget=Decimal("100"),
    )
    experiment_create(
        key="banner",
        name="Banner",
        model=model,
        stage=Stage.objects.get(model=model, key="new"),
        goal="place_order",
        window_days=10,
        variants=[{"key": "control", "is_control": True}, {"key": "banner"}],
    )
    return {"key": "status", "stage": "new", "external_id": "c-1", "campaign_id": campaign.pk}


def _url(path: str, values: dict) -> str:
    if path.startswith("/api/v1/experiments/"):
        values = {**values, "key": "banner"}
    return path.format(**values)


def test_every_dated_read_is_covered():
    """The schema walk finds the metric, lifecycle and campaign reads (a guard against an empty parametrization)."""
    paths = {path for path, _ in DATED_READS}
    assert {"/api/v1/customers/", "/api/v1/models/{key}/funnel/", "/api/v1/metrics/rates/"} <= paths
    assert len(paths) >= 20


@pytest.mark.parametrize(
    ("path", "parameter"),
    [(path, name) for path, names in DATED_READS for name in sorted(names & DATE_PARAMETERS)],
)
@pytest.mark.parametrize("value", ["2024-02-30", "yesterday", "2024-13-01"])
def test_an_unparseable_date_filter_gets_a_400_naming_it(reader, filters_history, path, parameter, value):
    params = {**_required(path), parameter: value}
    response = reader.get(_url(path, filters_history), params)
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert parameter in error_fields(response), response.json()


@pytest.mark.parametrize(
    ("path", "window"),
    [(path, window) for path, names in DATED_READS for window in DATE_WINDOWS if set(window) <= names],
)
def test_a_reversed_date_window_gets_a_400_naming_it(reader, filters_history, path, window):
    earlier, later = window
    params = {**_required(path), earlier: "2024-03-01", later: "2024-02-01"}
    response = reader.get(_url(path, filters_history), params)
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert set(window) & set(error_fields(response)), response.json()


def _required(path: str) -> dict:
    names = next(names for p, names in DATED_READS if p == path)
    return {name: value for name, value in REQUIRED_QUERY.items() if name in names}


DATE_FILTERS = ["impossible-day", "words", "reversed-cohort"]
# Each page, and the bad filters it must answer with a message; it ignores the others (it has no such filter).
PAGES = {
    "/models/status/overview/": DATE_FILTERS,
    "/models/status/funnel/": DATE_FILTERS,
    "/models/status/flows/": [*DATE_FILTERS, "reversed-period"],
    "/models/status/flows/customers/?to_stage=new": [*DATE_FILTERS, "reversed-period"],
    "/models/status/stages/new/": [*DATE_FILTERS, "reversed-period"],
    "/cohorts/": DATE_FILTERS,
    "/value/": [*DATE_FILTERS, "reversed-period"],
    # Lists behind a number, reached by its links: a bad filter falls back to the defaults (not an error).
    "/models/status/funnel/customers/?stage=new": [],
    "/cohorts/customers/?cohort=2024-01&month=1": [],
    "/customers/c-1/": [],
    "/experiments/banner/": [],
}
BAD_PAGE_FILTERS = {
    "impossible-day": {"as_of": "2024-02-30"},
    "words": {"as_of": "yesterday"},
    "reversed-cohort": {"cohort_start": "2024-03-01", "cohort_end": "2024-02-01"},
    "reversed-period": {"start": "2024-03-01", "end": "2024-02-01"},
}


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("bad", BAD_PAGE_FILTERS)
def test_a_page_with_an_unparseable_or_reversed_date_filter_shows_a_message(viewer_client, filters_history, page, bad):
    path, _, query = page.partition("?")
    params = dict(pair.split("=") for pair in query.split("&") if pair)
    response = viewer_client.get(path, {**params, **BAD_PAGE_FILTERS[bad]})
    assert response.status_code == 200
    if bad in PAGES[page]:
        assert 'role="alert"' in response.content.decode()
