"""Spot checks that the schemas carry the content SHEETS.md asks for, under the names the API relies on."""

import pytest

from renkei.sheets.registry import SheetRegistry

COMMON = "../_common/1.json#/$defs/"


def node(registry: SheetRegistry, sheet_id: str, *path: str) -> dict:
    """The schema at a path of property names, following refs into _common."""
    schema = registry.get(sheet_id, 1).schema
    for name in path:
        schema = deref(registry, schema)
        schema = schema["items"] if name == "[]" else schema["properties"][name]
    return schema


def deref(registry: SheetRegistry, schema: dict) -> dict:
    ref = schema.get("$ref")
    if ref and ref.startswith(COMMON):
        return registry.shared("_common", 1)["$defs"][ref.removeprefix(COMMON)]
    return schema


def codes(registry: SheetRegistry, schema: dict) -> list[str]:
    return deref(registry, schema)["enum"]


def test_shared_enums_carry_the_codes_listed_in_sheets_md(common):
    defs = common["$defs"]
    assert defs["care_level"]["enum"] == [
        "none", "support_1", "support_2", "care_1", "care_2", "care_3", "care_4", "care_5"
    ]
    assert defs["certification_status"]["enum"] == ["certified", "applying", "change_applying", "not_applied"]
    assert defs["bedridden_rank"]["enum"] == ["independent", "J1", "J2", "A1", "A2", "B1", "B2", "C1", "C2"]
    assert defs["dementia_rank"]["enum"] == ["independent", "I", "IIa", "IIb", "IIIa", "IIIb", "IV", "M"]
    assert defs["adl_level"]["enum"] == ["independent", "supervision", "partial", "full"]
    assert defs["food_texture"]["enum"] == ["normal", "chopped", "dysphagia", "blended"]
    assert defs["treatment_preference"]["enum"] == ["want", "conditional", "refuse", "undecided"]
    assert defs["place_preference"]["enum"] == [
        "home", "facility", "hospital", "palliative_ward", "undecided"
    ]
    assert set(defs["contact"]["properties"]) == {"name", "relationship", "phone", "note"}
    assert set(defs["procedure"]["enum"]) >= {"none", "iv_drip", "oxygen", "peg", "self_injection", "other"}
    assert {"self_injection_text", "other_text"} <= set(defs["procedures"]["properties"])
    assert defs["care_level"]["x-enum-labels"]["care_2"] == "要介護2"


def test_admission_info_has_the_header_and_all_nine_numbered_sections(registry):
    schema = registry.get("admission-info", 1).schema
    names = list(schema["properties"])
    assert names[0] == "header"
    sections = [
        (prop["x-section"], name) for name, prop in schema["properties"].items() if "x-section" in prop
    ]
    assert [number for number, _ in sections] == [str(n) for n in range(1, 10)]
    assert [name for _, name in sections] == [
        "basic", "family", "wishes", "services", "outlook",
        "conference", "function", "medication", "physician",
    ]
    assert schema["properties"]["basic"]["title"] == "利用者（患者）基本情報等"


def test_admission_info_records_when_and_to_whom_it_was_provided(registry):
    header = node(registry, "admission-info", "header")
    assert header["required"] == ["admission_date"]
    assert header["properties"]["admission_date"]["format"] == "date"
    assert header["properties"]["provided_at"]["format"] == "date-time"
    assert set(header["properties"]) >= {"record_date", "recipient", "sender", "consent_given"}
    assert set(node(registry, "admission-info", "header", "recipient")["properties"]) == {
        "hospital", "contact_person"
    }


def test_admission_info_back_page_covers_adl_meals_oral_toileting_and_communication(registry):
    adl = node(registry, "admission-info", "function", "adl")["properties"]
    assert list(adl) == ["mobility", "transfer", "dressing", "bed_mobility", "grooming", "bathing", "eating"]
    assert all(prop["$ref"] == COMMON + "adl_level" for prop in adl.values())
    meals = node(registry, "admission-info", "function", "meals")["properties"]
    assert meals["texture"]["$ref"] == COMMON + "food_texture"
    assert {"times_per_day", "udf_grade", "route", "thickened_fluids", "fluid_restriction"} <= set(meals)
    function = node(registry, "admission-info", "function")["properties"]
    assert {"oral", "toileting", "sleep", "communication", "behaviour", "disease_history",
            "recent_admissions", "procedures", "smoking", "alcohol"} <= set(function)
    assert "day_night_reversal" in function["behaviour"]["items"]["enum"]
    swallowing = function["oral"]["properties"]["swallowing"]
    assert codes(registry, swallowing) == ["no_choking", "sometimes", "always"]


def test_admission_info_basic_information_uses_the_shared_ranks(registry):
    basic = node(registry, "admission-info", "basic")["properties"]
    for name in ("care_level", "certification", "bedridden_rank", "dementia_rank"):
        assert basic[name]["$ref"] == COMMON + name
    assert basic["copayment"]["x-enum-labels"] == {
        "rate_1": "1割", "rate_2": "2割", "rate_3": "3割", "unknown": "不明"
    }
    assert basic["pension"]["items"]["x-enum-labels"]["welfare"] == "生活保護"


def test_discharge_info_has_its_four_numbered_sections_and_a_structured_contact_log(registry):
    schema = registry.get("discharge-info", 1).schema
    assert schema["required"] == ["header", "contact_log"]
    numbered = [prop["x-section"] for prop in schema["properties"].values() if "x-section" in prop]
    assert numbered == ["1", "2", "3", "4"]
    log = schema["properties"]["contact_log"]
    assert (log["minItems"], log["maxItems"]) == (1, 3)
    assert log["items"]["required"] == [
        "date", "informant_profession", "informant_name", "conference_attended"
    ]
    assert log["items"]["properties"]["conference_attended"]["type"] == "boolean"
    assert log["items"]["properties"]["date"]["format"] == "date"


def test_discharge_info_lists_nursing_and_rehabilitation_points(registry):
    needs = node(registry, "discharge-info", "needs")["properties"]
    nursing = set(needs["nursing_points"]["items"]["enum"])
    assert {"glucose_control", "terminal", "medication_teaching"} <= nursing
    assert {"range_of_motion", "iadl_practice", "work_support"} <= set(needs["rehab_points"]["items"]["enum"])
    assert needs["procedures"]["$ref"] == COMMON + "procedures"
    diseases = node(registry, "discharge-info", "condition", "diseases")
    assert diseases["items"]["properties"]["status"]["enum"] == ["stable", "unstable"]


def test_discharge_info_records_choking_and_three_levels_of_oral_care(registry):
    condition = node(registry, "discharge-info", "condition")["properties"]
    assert codes(registry, condition["choking"]) == ["none", "sometimes", "always"]
    oral_care = condition["oral_care"]
    assert oral_care["enum"] == ["independent", "partial", "full"]
    assert oral_care["x-enum-labels"] == {"independent": "自立", "partial": "一部介助", "full": "全介助"}


def test_emergency_info_exposes_the_fields_the_patient_summary_reads(registry):
    schema = registry.get("emergency-info", 1).schema
    assert schema["required"] == ["resuscitation"]
    resuscitation = node(registry, "emergency-info", "resuscitation")
    assert resuscitation["required"] == ["wish"]
    assert resuscitation["properties"]["wish"]["enum"] == ["full_treatment", "dnar", "not_confirmed"]
    assert set(node(registry, "emergency-info", "allergies", "[]")["properties"]) == {"substance", "reaction"}
    medication = node(registry, "emergency-info", "medications", "[]")
    assert set(medication["properties"]) == {"name", "dose", "timing"}
    assert "name" in node(registry, "emergency-info", "diseases", "[]")["properties"]
    physician = node(registry, "emergency-info", "contacts", "attending_physician")
    assert set(physician["properties"]) == {"clinic", "doctor", "phone_24h"}
    contacts = node(registry, "emergency-info", "emergency_contacts")
    assert (contacts["minItems"], contacts["maxItems"]) == (1, 3)
    assert contacts["items"]["$ref"] == COMMON + "contact"
    event_vitals = node(registry, "emergency-info", "event", "vitals")
    assert "consciousness_jcs" in deref(registry, event_vitals)["properties"]


@pytest.mark.parametrize(
    "item",
    ["cpr", "ventilation", "tube_feeding", "central_iv", "peripheral_iv", "ambulance", "hospitalisation"],
)
def test_acp_records_a_preference_and_its_conditions_for_each_treatment(registry, item):
    preferences = node(registry, "acp", "treatment_preferences")["properties"]
    assert preferences[item]["$ref"] == COMMON + "treatment_preference"
    assert preferences[f"{item}_condition"]["type"] == "string"


def test_acp_records_how_the_wish_was_established_and_where_the_patient_wants_to_be(registry):
    schema = registry.get("acp", 1).schema
    assert schema["required"] == ["record_date", "decision_basis", "treatment_preferences"]
    props = schema["properties"]
    assert props["decision_basis"]["enum"] == ["stated_by_patient", "presumed_by_family", "team_judgement"]
    assert props["place_of_care"]["$ref"] == props["place_of_death"]["$ref"] == COMMON + "place_preference"
    assert props["next_review_date"]["format"] == "date"
    assert props["status"]["enum"] == ["current", "superseded"]
    assert {"nasal", "peg"} <= set(props["treatment_preferences"]["properties"]["tube_feeding_route"]["enum"])
    assert "priority" in props["substitute_decision_makers"]["items"]["properties"]
    assert "法的" in props["substitute_decision_makers"]["description"]


def test_physician_visit_records_plan_changes_cautions_and_prescriptions(registry):
    schema = registry.get("physician-visit", 1).schema
    assert schema["required"] == ["visit_date"]
    props = schema["properties"]
    assert {"next_visit_date", "treatment_plan", "cautions", "end_of_life", "vitals", "findings",
            "prescriptions"} <= set(props)
    assert props["treatment_plan"]["properties"]["changed"]["type"] == "boolean"


def test_care_note_covers_vitals_intake_excretion_skin_medication_and_requests(registry):
    schema = registry.get("care-note", 1).schema
    assert "required" not in schema
    props = schema["properties"]
    assert {
        "vitals", "intake", "excretion", "sleep", "skin", "medication", "observations", "request"
    } <= set(props)
    assert props["observations"]["maxLength"] == 4000
    assert props["request"]["properties"]["profession"]["$ref"] == COMMON + "profession"
    assert "weight" in deref(registry, props["vitals"])["properties"]


def test_message_requires_non_empty_text_of_at_most_4000_characters(registry):
    schema = registry.get("message", 1).schema
    assert schema["required"] == ["text"]
    assert (schema["properties"]["text"]["minLength"], schema["properties"]["text"]["maxLength"]) == (1, 4000)
