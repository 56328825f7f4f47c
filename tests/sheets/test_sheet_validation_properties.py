"""Property tests: validation never crashes and its paths always lead somewhere real."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renkei.sheets import service as sheets_service
from renkei.sheets.registry import SheetRegistry
from tests.sheets.support import SCHEMA_FILES, SCHEMAS_DIR
from tests.sheets.examples import EXAMPLES

REGISTRY = SheetRegistry.load(SCHEMAS_DIR)
SHEET_IDS = sorted(EXAMPLES)


def collect(node, key: str) -> set[str]:
    """Every property name (key="properties") or required name (key="required") in a JSON document."""
    found: set[str] = set()
    if isinstance(node, dict):
        if key == "properties" and isinstance(node.get("properties"), dict):
            found |= set(node["properties"])
        if key == "required" and isinstance(node.get("required"), list):
            found |= set(node["required"])
        for value in node.values():
            found |= collect(value, key)
    elif isinstance(node, list):
        for value in node:
            found |= collect(value, key)
    return found


DOCUMENTS = [json.loads(f.read_text(encoding="utf-8")) for f in SCHEMA_FILES]
PROPERTY_NAMES = sorted(set().union(*(collect(d, "properties") for d in DOCUMENTS)))
REQUIRED_NAMES = set().union(*(collect(d, "required") for d in DOCUMENTS))

# Keys are mostly real property names so the data reaches deep into the schemas.
keys = st.one_of(st.sampled_from(PROPERTY_NAMES), st.text(max_size=8))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["2025-06-10", "2025-06-10T09:00:00+09:00", "dnar", "care_2", "ok", "1", "0"]),
)
json_ish = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=30,
)


def tokens(pointer: str) -> list[str]:
    assert pointer == "" or pointer.startswith("/"), pointer
    assert "~" not in pointer.replace("~0", "").replace("~1", ""), pointer
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def resolve(document, parts: list[str]):
    """Follow parts into the instance; raise LookupError if a part is absent."""
    for part in parts:
        if isinstance(document, dict):
            document = document[part]
        elif isinstance(document, list) and part.isdigit():
            document = document[int(part)]
        else:
            raise LookupError(part)
    return document


def assert_points_into_instance_or_schema(data, pointer: str) -> None:
    parts = tokens(pointer)
    try:
        resolve(data, parts)
    except LookupError:
        # Only a missing required field may point past the data, and then at a name the schema knows.
        parent = resolve(data, parts[:-1])
        assert isinstance(parent, dict) and parts[-1] not in parent, pointer
        assert parts[-1] in REQUIRED_NAMES, pointer


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sheet_id=st.sampled_from(SHEET_IDS), data=json_ish)
def test_validating_arbitrary_json_never_raises_and_every_path_is_a_json_pointer(sheet_id, data):
    errors = REGISTRY.validate(sheet_id, 1, data)
    for error in errors:
        assert error.message_ja and error.message_en
        assert_points_into_instance_or_schema(data, error.path)
    assert len({e.path for e in errors}) == len(errors)


@settings(max_examples=200, deadline=None)
@given(
    sheet_id=st.sampled_from(SHEET_IDS),
    section=st.data(),
    value=json_ish,
)
def test_replacing_one_part_of_a_valid_sheet_reports_errors_only_inside_that_part(sheet_id, section, value):
    data = json.loads(json.dumps(EXAMPLES[sheet_id]))
    name = section.draw(st.sampled_from(sorted(data)))
    data[name] = value
    for error in REGISTRY.validate(sheet_id, 1, data):
        assert error.path.startswith(f"/{name}"), error
        assert_points_into_instance_or_schema(data, error.path)


def date_leaves(node, pointer: str = ""):
    """Pointers of the example's values that look like dates or date-times (the fields date checks read)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from date_leaves(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from date_leaves(value, f"{pointer}/{i}")
    elif isinstance(node, str) and len(node) >= 10 and node[4] + node[7] == "--" and node[:4].isdigit():
        yield pointer


DATE_LEAVES = {sheet_id: list(date_leaves(EXAMPLES[sheet_id])) for sheet_id in SHEET_IDS}
years = st.integers(min_value=0, max_value=9999).map(lambda y: f"{y:04d}")
date_ish = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat() + "+09:00"),
    st.datetimes().map(lambda d: d.isoformat()),
    st.tuples(years, st.integers(0, 13), st.integers(0, 32)).map(lambda t: f"{t[0]}-{t[1]:02d}-{t[2]:02d}"),
    st.text(max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(sheet_id=st.sampled_from([s for s in SHEET_IDS if DATE_LEAVES[s]]), data=st.data())
def test_any_value_in_the_date_fields_of_a_valid_sheet_is_reported_never_raised(sheet_id, data):
    # The schema check and the date-sense checks (not in the future, not before another date) together, as
    # posting runs them: a value of the wrong kind must come back as a field error, not an exception.
    sheet = REGISTRY.get(sheet_id, 1)
    document = json.loads(json.dumps(EXAMPLES[sheet_id]))
    for pointer in data.draw(st.lists(st.sampled_from(DATE_LEAVES[sheet_id]), min_size=1, max_size=3)):
        parts = tokens(pointer)
        key = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
        resolve(document, parts[:-1])[key] = data.draw(date_ish)
    for error in sheets_service.field_errors(REGISTRY, sheet, document):
        assert error.message_ja and error.message_en
        assert_points_into_instance_or_schema(document, error.path)
