"""Bad input: every failing field listed (JSON pointer, Japanese and English), nothing stored."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from sqlalchemy import func, select

from renkei.db.types import today_jst
from renkei.timeline.models import EntryRecipient, TimelineEntry
from tests.factories import grant_consent, make_org, make_patient, make_user
from tests.timeline.support import example, png_bytes, post, posted, upload


def stored(db) -> tuple[int, int]:
    return (db.scalar(select(func.count()).select_from(TimelineEntry)),
            db.scalar(select(func.count()).select_from(EntryRecipient)))


def fields(r) -> dict[str, tuple[str, str]]:
    return {f["path"]: (f["message_ja"], f["message_en"]) for f in r.json()["fields"]}


def test_invalid_sheet_data_lists_every_failing_field_and_stores_nothing(client, db, world, as_user):
    tomorrow = (today_jst() + timedelta(days=2)).isoformat()
    data = example("emergency-info")
    data["resuscitation"]["wish"] = "maybe"                       # wrong enum
    del data["emergency_contacts"][0]["name"]                      # missing required field
    data["medications"][0]["dose"] = 2                             # wrong type
    data["baseline"]["hobby"] = "囲碁"                             # extra field
    data["resuscitation"]["anticipated_course"] = "長" * 4001      # over-long text
    data["resuscitation"]["acp_date"] = "2025/05/12"               # date in the wrong format
    data["diseases"][0]["since"] = tomorrow                        # a date that has not happened yet
    before = stored(db)
    r = post(client, as_user(world.physician), world.patient_id, "emergency-info", data)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_input"
    got = fields(r)
    assert set(got) == {
        "/data/resuscitation/wish", "/data/emergency_contacts/0/name", "/data/medications/0/dose",
        "/data/baseline/hobby", "/data/resuscitation/anticipated_course", "/data/resuscitation/acp_date",
        "/data/diseases/0/since",
    }
    assert got["/data/resuscitation/wish"] == ("選択肢にない値です", "Not one of the allowed values")
    assert got["/data/emergency_contacts/0/name"] == ("必須項目です", "This field is required")
    assert got["/data/baseline/hobby"] == ("不明な項目です", "Unknown field")
    assert got["/data/diseases/0/since"] == ("未来の日付・時刻は入力できません", "Must not be in the future")
    assert got["/data/resuscitation/acp_date"][1] == "Invalid date (YYYY-MM-DD)"
    assert "4000" in got["/data/resuscitation/anticipated_course"][0]
    assert all(ja and en for ja, en in got.values())
    assert stored(db) == before


def test_future_record_and_contact_dates_are_refused_like_a_future_birth_date(client, db, world, as_user, team):
    future = (today_jst() + timedelta(days=3)).isoformat()
    data = example("discharge-info")
    data["header"]["record_date"] = future
    data["contact_log"][1]["date"] = future
    data["admission"]["planned_discharge_date"] = "2025-06-01"  # before the admission date
    before = stored(db)
    r = post(client, as_user(team.msw), world.patient_id, "discharge-info", data)
    assert r.status_code == 422
    got = fields(r)
    assert set(got) == {"/data/header/record_date", "/data/contact_log/1/date",
                        "/data/admission/planned_discharge_date"}
    assert got["/data/admission/planned_discharge_date"][0].startswith("入院（所）日")
    assert stored(db) == before


@pytest.mark.parametrize(("sheet", "field", "author"), [
    ("physician-visit", ("next_visit_date",), "physician"),
    ("acp", ("next_review_date",), "physician"),
    ("discharge-info", ("admission", "planned_discharge_date"), "msw"),
])
def test_a_date_time_typed_into_a_date_that_is_ordered_against_another_is_a_422_not_a_crash(
        client, db, world, as_user, team, sheet, field, author):
    data = example(sheet)
    node = data
    for key in field[:-1]:
        node = node[key]
    node[field[-1]] = "2030-01-02T00:00:00+09:00"
    user = team.msw if author == "msw" else world.physician
    before = stored(db)
    r = post(client, as_user(user), world.patient_id, sheet, data)
    assert r.status_code == 422, r.text
    assert fields(r) == {"/data/" + "/".join(field): ("日付の形式が正しくありません（YYYY-MM-DD）",
                                                      "Invalid date (YYYY-MM-DD)")}
    assert stored(db) == before


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1889-12-31", "2200-01-01"])
def test_an_implausible_year_in_a_sheet_date_is_refused_by_name(client, db, world, as_user, team, day):
    data = example("admission-info")
    data["header"]["admission_date"] = day
    before = stored(db)
    r = post(client, as_user(team.care_manager), world.patient_id, "admission-info", data)
    assert r.status_code == 422, r.text
    assert fields(r)["/data/header/admission_date"] == ("1890年から2199年までの日付を入力してください",
                                                         "Must be a date between 1890 and 2199")
    assert stored(db) == before


def test_an_implausible_year_in_a_sheet_date_time_is_refused(client, db, world, as_user):
    data = example("emergency-info")
    data["event"] = {"found_at": "0001-01-01T00:00:00+09:00"}
    r = post(client, as_user(world.nurse), world.patient_id, "emergency-info", data)
    assert r.status_code == 422, r.text
    assert fields(r) == {"/data/event/found_at": ("1890年から2199年までの日付を入力してください",
                                                  "Must be a date between 1890 and 2199")}


@pytest.mark.parametrize(("name", "day"), [("until", "9999-12-31"), ("since", "0001-01-01")])
def test_timeline_filter_with_an_implausible_date_is_a_422_naming_it(client, world, as_user, name, day):
    r = client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=as_user(world.nurse),
                   params={name: day})
    assert r.status_code == 422, r.text
    assert [f["path"] for f in r.json()["fields"]] == [f"/query/{name}"]


def test_patient_identity_cannot_be_retyped_into_a_sheet(client, db, world, as_user):
    data = example("care-note") | {"birth_date": "1938-04-02", "patient_name": "山田 花子"}
    r = post(client, as_user(world.nurse), world.patient_id, "care-note", data)
    assert r.status_code == 422
    assert set(fields(r)) == {"/data/birth_date", "/data/patient_name"}
    assert "山田" not in r.text


def test_unknown_sheet_or_version_is_404_unknown_sheet(client, db, world, as_user):
    nurse = as_user(world.nurse)
    before = stored(db)
    for sheet, version in (("referral-letter", 1), ("care-note", 99)):
        r = client.post(f"/api/v1/patients/{world.patient_id}/entries", headers=nurse,
                        json={"sheet": sheet, "version": version, "data": {}})
        assert r.status_code == 404 and r.json()["error"] == "unknown_sheet"
    assert stored(db) == before


def test_request_envelope_errors_are_422_by_pointer(client, world, as_user):
    r = client.post(f"/api/v1/patients/{world.patient_id}/entries", headers=as_user(world.nurse),
                    json={"sheet": "message", "data": {"text": "x"}, "status": "published", "colour": "red"})
    assert r.status_code == 422
    assert {"/status", "/colour"} <= set(fields(r))


def test_recipients_must_be_on_the_care_team(client, db, world, as_user):
    stranger_org = make_org(db, "無関係の病院", "hospital")
    stranger = make_user(db, stranger_org, profession="nurse")
    before = stored(db)
    nurse = as_user(world.nurse)
    r = post(client, nurse, world.patient_id, "message", {"text": "宛先つき"},
             recipients=[{"organisation_id": str(world.clinic.id)}, {"organisation_id": str(stranger_org.id)},
                         {"user_id": str(stranger.id)}])
    assert r.status_code == 422
    assert set(fields(r)) == {"/recipients/1/organisation_id", "/recipients/2/user_id"}
    both = post(client, nurse, world.patient_id, "message", {"text": "宛先つき"},
                recipients=[{"organisation_id": str(world.clinic.id), "user_id": str(world.physician.id)}])
    assert both.status_code == 422 and set(fields(both)) == {"/recipients/0"}
    assert stored(db) == before


def test_references_to_unknown_or_other_patients_attachments_and_entries_are_refused(
    client, db, keyring, world, as_user
):
    doctor = as_user(world.physician)
    other = make_patient(db, keyring, world.physician, name="別の 患者", name_kana="ベツノ カンジャ")
    grant_consent(db, keyring, other, world.physician)
    foreign_photo = upload(client, doctor, other, "care-note", png_bytes()).json()["id"]
    foreign_acp = posted(client, doctor, other, "acp")["id"]
    data = example("physician-visit")
    data["end_of_life"]["acp_entry_id"] = foreign_acp
    before = stored(db)
    r = post(client, doctor, world.patient_id, "physician-visit", data)
    assert r.status_code == 422
    assert fields(r) == {"/data/end_of_life/acp_entry_id": ("記録が見つかりません", "No such entry for this patient")}
    note = example("care-note")
    note["skin"]["photo_attachment_ids"] = [foreign_photo, str(uuid.uuid4())]
    r = post(client, doctor, world.patient_id, "care-note", note)
    assert r.status_code == 422
    assert set(fields(r)) == {"/data/skin/photo_attachment_ids/0", "/data/skin/photo_attachment_ids/1"}
    assert stored(db) == before


def test_a_field_for_the_current_acp_refuses_an_entry_of_another_sheet(client, db, world, as_user):
    doctor = as_user(world.physician)
    message = posted(client, doctor, world.patient_id, "message", {"text": "連絡"})["id"]
    acp = posted(client, doctor, world.patient_id, "acp")["id"]
    data = example("physician-visit")
    data["end_of_life"]["acp_entry_id"] = message
    before = stored(db)
    r = post(client, doctor, world.patient_id, "physician-visit", data)
    assert r.status_code == 422
    assert fields(r) == {"/data/end_of_life/acp_entry_id": (
        "この欄で選べる種類の記録ではありません", "This field must refer to an entry of the acp sheet")}
    assert stored(db) == before
    data["end_of_life"]["acp_entry_id"] = acp
    assert post(client, doctor, world.patient_id, "physician-visit", data).status_code == 201


BAD_TIMELINE_QUERIES = ("/api/v1/patients/not-a-uuid/timeline", "/api/v1/patients/{pid}/timeline?kind=zzz",
                        "/api/v1/patients/{pid}/timeline?limit=1000",
                        "/api/v1/patients/{pid}/timeline?since=yday")


@pytest.mark.parametrize("path", BAD_TIMELINE_QUERIES)
@pytest.mark.parametrize("authorization", [None, "Bearer garbage", "Basic dXNlcjpwYXNz"],
                         ids=["anonymous", "unverifiable-token", "other-scheme"])
def test_bad_timeline_input_from_a_caller_not_signed_in_is_401_not_a_field_report(client, world, path,
                                                                                  authorization):
    headers = {"Authorization": authorization} if authorization else {}
    r = client.get(path.format(pid=world.patient_id), headers=headers)
    assert r.status_code == 401 and r.json()["fields"] == []


@pytest.mark.parametrize("path", BAD_TIMELINE_QUERIES)
def test_bad_timeline_input_from_a_signed_in_member_names_the_field(client, world, as_user, path):
    r = client.get(path.format(pid=world.patient_id), headers=as_user(world.nurse))
    assert r.status_code == 422 and r.json()["fields"]
