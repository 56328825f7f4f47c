"""Validation through the registry: every failing field, by JSON pointer, in Japanese and English."""

import copy

import pytest

from renkei.sheets.registry import FieldError, SheetRegistry
from tests.sheets.examples import EXAMPLES

REQUIRED = ("必須項目です", "This field is required")
UNKNOWN = ("不明な項目です", "Unknown field")
NOT_ALLOWED = ("選択肢にない値です", "Not one of the allowed values")
BAD_DATE = ("日付の形式が正しくありません（YYYY-MM-DD）", "Invalid date (YYYY-MM-DD)")


def pairs(errors: list[FieldError]) -> dict[str, tuple[str, str]]:
    """path -> (ja, en), asserting one error per path."""
    result = {e.path: (e.message_ja, e.message_en) for e in errors}
    assert len(result) == len(errors), errors
    return result


def example(sheet_id: str) -> dict:
    return copy.deepcopy(EXAMPLES[sheet_id])


def test_there_is_an_example_for_every_sheet(registry):
    assert set(EXAMPLES) == {sheet.id for sheet in registry.all()}


@pytest.mark.parametrize("sheet_id", sorted(EXAMPLES))
def test_realistic_example_of_each_sheet_is_valid(registry, sheet_id):
    assert registry.validate(sheet_id, 1, EXAMPLES[sheet_id]) == []


@pytest.mark.parametrize(
    ("sheet_id", "minimal"),
    [
        ("admission-info", {"header": {"admission_date": "2025-06-02"}}),
        ("discharge-info", {
            "header": {"record_date": "2025-06-20"},
            "contact_log": [{"date": "2025-06-20", "informant_profession": "msw",
                             "informant_name": "木村 ゆかり", "conference_attended": False}],
        }),
        ("emergency-info", {"resuscitation": {"wish": "not_confirmed"}}),
        ("acp", {
            "record_date": "2025-05-12",
            "decision_basis": "presumed_by_family",
            "treatment_preferences": {},
        }),
        ("physician-visit", {"visit_date": "2025-06-10"}),
        ("care-note", {}),
        ("message", {"text": "了解しました。"}),
    ],
)
def test_partial_sheet_with_only_the_required_fields_is_valid(registry, sheet_id, minimal):
    assert registry.validate(sheet_id, 1, minimal) == []


@pytest.mark.parametrize(
    ("sheet_id", "missing"),
    [
        ("admission-info", ["/header"]),
        ("discharge-info", ["/contact_log", "/header"]),
        ("emergency-info", ["/resuscitation"]),
        ("acp", ["/decision_basis", "/record_date", "/treatment_preferences"]),
        ("physician-visit", ["/visit_date"]),
        ("message", ["/text"]),
    ],
)
def test_empty_sheet_reports_each_missing_required_field(registry, sheet_id, missing):
    assert pairs(registry.validate(sheet_id, 1, {})) == {path: REQUIRED for path in missing}


def test_invalid_admission_info_reports_every_failing_field_with_its_pointer_in_both_languages(registry):
    data = example("admission-info")
    del data["header"]["admission_date"]
    data["header"]["record_date"] = "2025-13-01"
    data["basic"]["care_level"] = "care_9"
    data["family"]["main_carer"]["age"] = "八十八"
    data["wishes"]["interests"] = "あ" * 4001
    data["function"]["unknown_field"] = 1
    data["function"]["adl"]["walking"] = "independent"
    data["medication"]["oral_medication"] = True
    data["physician"]["visits_per_month"] = 40
    data["basic"]["pension"] = ["national", "national"]

    assert pairs(registry.validate("admission-info", 1, data)) == {
        "/basic/care_level": NOT_ALLOWED,
        "/basic/pension": ("同じ値が重複しています", "Contains duplicate values"),
        "/family/main_carer/age": ("整数で入力してください", "Must be an integer"),
        "/function/adl/walking": UNKNOWN,
        "/function/unknown_field": UNKNOWN,
        "/header/admission_date": REQUIRED,
        "/header/record_date": BAD_DATE,
        "/medication/oral_medication": ("文字列で入力してください", "Must be a string"),
        "/physician/visits_per_month": ("31以下の値を入力してください", "Must be at most 31"),
        "/wishes/interests": ("4000文字以内で入力してください", "Must be at most 4000 characters"),
    }


def test_errors_are_sorted_by_path_with_array_indices_in_numeric_order(registry):
    data = example("emergency-info")
    data["medications"] = [{"name": f"薬{i}"} for i in range(12)]
    data["medications"][2]["dose"] = 5
    data["medications"][10]["dose"] = 5
    data["allergies"][0]["reaction"] = None
    paths = [e.path for e in registry.validate("emergency-info", 1, data)]
    assert paths == ["/allergies/0/reaction", "/medications/2/dose", "/medications/10/dose"]


def test_error_inside_a_shared_definition_points_into_the_submitted_data(registry):
    data = example("emergency-info")
    data["emergency_contacts"][1] = {"relationship": "長男の妻", "phone": "０８０-1234", "fax": "x"}
    assert pairs(registry.validate("emergency-info", 1, data)) == {
        "/emergency_contacts/1/fax": UNKNOWN,
        "/emergency_contacts/1/name": REQUIRED,
        "/emergency_contacts/1/phone": ("入力形式が正しくありません", "Does not match the expected format"),
    }


@pytest.mark.parametrize(
    ("log", "message"),
    [
        ([], ("1件以上入力してください", "Must have at least 1 items")),
        ([EXAMPLES["discharge-info"]["contact_log"][0]] * 4, ("3件以内で入力してください", "Must have at most 3 items")),
    ],
)
def test_discharge_contact_log_holds_one_to_three_contacts(registry, log, message):
    data = example("discharge-info")
    data["contact_log"] = log
    assert pairs(registry.validate("discharge-info", 1, data)) == {"/contact_log": message}


def test_discharge_contact_needs_date_profession_name_and_conference_flag(registry):
    data = example("discharge-info")
    data["contact_log"].append({"date": "2025-06-21", "informant_profession": "dentist"})
    data["contact_log"][0]["informant_profession"] = "doctor"
    assert pairs(registry.validate("discharge-info", 1, data)) == {
        "/contact_log/0/informant_profession": NOT_ALLOWED,
        "/contact_log/2/conference_attended": REQUIRED,
        "/contact_log/2/informant_name": REQUIRED,
    }


def test_unknown_resuscitation_wish_is_rejected(registry):
    data = example("emergency-info")
    data["resuscitation"]["wish"] = "DNR"
    assert pairs(registry.validate("emergency-info", 1, data)) == {"/resuscitation/wish": NOT_ALLOWED}


CONDITIONS_NEEDED = ("「条件付き」を選んだときは条件を記入してください",
                     "Write the conditions when choosing “conditional”")
TREATMENTS = ["cpr", "ventilation", "tube_feeding", "central_iv", "peripheral_iv", "ambulance",
              "hospitalisation"]


@pytest.mark.parametrize("treatment", TREATMENTS)
@pytest.mark.parametrize("condition", [None, "", "　 "])
def test_conditional_treatment_wish_needs_its_conditions(registry, treatment, condition):
    data = example("acp")
    preferences = data["treatment_preferences"]
    preferences[treatment] = "conditional"
    preferences.pop(f"{treatment}_condition", None)
    if condition is not None:
        preferences[f"{treatment}_condition"] = condition
    assert pairs(registry.validate("acp", 1, data)) == {
        f"/treatment_preferences/{treatment}_condition": CONDITIONS_NEEDED}


@pytest.mark.parametrize("treatment", TREATMENTS)
@pytest.mark.parametrize("choice", ["want", "refuse", "undecided"])
def test_other_treatment_wishes_need_no_conditions(registry, treatment, choice):
    data = example("acp")
    data["treatment_preferences"][treatment] = choice
    data["treatment_preferences"].pop(f"{treatment}_condition", None)
    assert registry.validate("acp", 1, data) == []


def test_conditional_wish_with_its_conditions_is_valid(registry):
    data = example("acp")
    data["treatment_preferences"].update(cpr="conditional", cpr_condition="回復の見込みがあるときのみ")
    assert registry.validate("acp", 1, data) == []


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2025-06-10T03:12:00+09:00", True),
        ("2025-06-09T18:12:00Z", True),
        ("2025-06-09T18:12:00.250Z", True),
        ("2025-06-10T03:12:00", False),
        ("2025-06-10 03:12:00+09:00", False),
        ("2025-02-30T03:12:00+09:00", False),
        ("２０２５-06-10T03:12:00+09:00", False),
        ("昨日の夜", False),
    ],
)
def test_date_times_need_a_real_date_and_a_utc_offset(registry, value, valid):
    data = example("emergency-info")
    data["event"] = {"found_at": value}
    errors = registry.validate("emergency-info", 1, data)
    if valid:
        assert errors == []
    else:
        assert pairs(errors) == {"/event/found_at": (
            "日時の形式が正しくありません（YYYY-MM-DDThh:mm:ss+09:00）",
            "Invalid date-time (YYYY-MM-DDThh:mm:ss+09:00)",
        )}


@pytest.mark.parametrize(
    "value", ["2025-6-1", "2025-02-29", "令和7年6月1日", "２０２５-06-01", "2025-06-01T00:00:00+09:00"]
)
def test_dates_must_be_real_calendar_dates_in_iso_form(registry, value):
    errors = registry.validate("physician-visit", 1, {"visit_date": value})
    assert pairs(errors)["/visit_date"] == BAD_DATE


def test_attachments_must_be_uuids(registry):
    data = example("care-note")
    data["skin"]["photo_attachment_ids"] = ["photo.jpg"]
    assert pairs(registry.validate("care-note", 1, data)) == {
        "/skin/photo_attachment_ids/0": ("IDの形式が正しくありません", "Invalid id (UUID)"),
    }


def test_vital_signs_out_of_range_are_reported_with_the_limit(registry):
    data = example("care-note")
    data["vitals"]["spo2"] = 101
    data["vitals"]["temperature"] = 20.5
    assert pairs(registry.validate("care-note", 1, data)) == {
        "/vitals/spo2": ("100以下の値を入力してください", "Must be at most 100"),
        "/vitals/temperature": ("25以上の値を入力してください", "Must be at least 25"),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", ("入力してください", "Must not be empty")),
        ("連" * 4001, ("4000文字以内で入力してください", "Must be at most 4000 characters")),
    ],
)
def test_message_text_must_be_between_one_and_4000_characters(registry, text, message):
    assert pairs(registry.validate("message", 1, {"text": text})) == {"/text": message}


def test_message_of_exactly_4000_japanese_characters_is_accepted(registry):
    assert registry.validate("message", 1, {"text": "連" * 4000}) == []


@pytest.mark.parametrize("data", [None, [], "本文", 3])
def test_data_that_is_not_an_object_is_reported_at_the_root(registry, data):
    assert pairs(registry.validate("message", 1, data)) == {
        "": ("項目のまとまりで入力してください", "Must be an object")
    }


def test_validating_an_unknown_sheet_or_version_raises_key_error(registry):
    with pytest.raises(KeyError):
        registry.validate("referral", 1, {})
    with pytest.raises(KeyError):
        registry.validate("message", 2, {"text": "x"})


def test_registry_lists_sheets_by_id_and_finds_the_latest_version(registry: SheetRegistry):
    sheets = registry.all()
    assert [s.id for s in sheets] == sorted(s.id for s in sheets)
    acp = registry.latest("acp")
    assert (acp.id, acp.version, acp.category) == ("acp", 1, "acp")
    assert (acp.title, acp.title_en) == ("人生会議（ACP）・看取りの記録", "Advance care planning / end-of-life record")
    assert registry.get("message", 1).schema["required"] == ["text"]
    with pytest.raises(KeyError):
        registry.latest("referral")
    with pytest.raises(KeyError):
        registry.get("acp", 2)


@pytest.mark.parametrize(
    ("sheet_id", "pointer", "labels"),
    [
        ("admission-info", "/header/admission_date", ("入院日", "Admission date")),
        ("admission-info", "/basic/certification/status", ("認定状況", "Certification status")),
        ("admission-info", "/function/communication/hearing", ("聴力", "Hearing")),
        ("discharge-info", "/contact_log/2/informant_name", ("氏名", "Informant name")),
        ("emergency-info", "/emergency_contacts/0/phone", ("電話番号", "Phone")),
        ("emergency-info", "/event/vitals/consciousness_jcs", ("意識レベル（JCS）", "Consciousness (JCS)")),
        ("care-note", "/skin/photo_attachment_ids/0", ("添付ファイルID", "Attachment id")),
        ("message", "", ("連絡", "Message")),
    ],
)
def test_field_label_names_a_field_in_japanese_and_english(registry, sheet_id, pointer, labels):
    assert registry.field_label(sheet_id, 1, pointer) == labels


@pytest.mark.parametrize("pointer", ["/nope", "/header/admission_date/x", "header", "/contact_log/x"])
def test_field_label_of_an_unknown_field_raises_key_error(registry, pointer):
    with pytest.raises(KeyError):
        registry.field_label("discharge-info", 1, pointer)


@pytest.mark.parametrize(("sheet_id", "pointer", "value"), [
    ("admission-info", "/function/oral/swallowing", "none"),
    ("discharge-info", "/condition/oral_care", "supervision"),
])
def test_codes_of_another_scale_are_refused(registry, sheet_id, pointer, value):
    data = copy.deepcopy(EXAMPLES[sheet_id])
    *parents, last = pointer.strip("/").split("/")
    node = data
    for key in parents:
        node = node[key]
    node[last] = value
    assert [(e.path, e.message_en) for e in registry.validate(sheet_id, 1, data)] == [
        (pointer, "Not one of the allowed values")]
