"""Server-rendered timeline and entry pages (cookie session): Japanese first, team only."""

from __future__ import annotations

from renkei.auth import service as auth_service
from tests.timeline.support import example, png_bytes, posted, upload


def sign_in(client, db, settings, user) -> None:
    """A cookie session for `user`, as the sign-in page would create it."""
    _, cookie = auth_service.start_session(db, settings=settings, user=user, kind="web")
    client.cookies.set("renkei_session", cookie)


def test_timeline_page_shows_the_summary_and_entries(client, db, settings, world, as_user):
    posted(client, as_user(world.physician), world.patient_id, "emergency-info")
    posted(client, as_user(world.nurse), world.patient_id, "message", {"text": "明日の訪問は14時からです"},
           priority="urgent")
    sign_in(client, db, settings, world.physician)
    r = client.get(f"/patients/{world.patient_id}/timeline")
    assert r.status_code == 200, r.text
    page = r.text
    assert "現在の状態" in page and "ペニシリン系抗菌薬" in page and "048-555-0199" in page
    assert "連絡" in page and "至急" in page and "未読" in page and "看護 花子" in page
    assert r.headers["cache-control"] == "no-store"


def test_entry_page_labels_fields_in_japanese(client, db, settings, world, as_user):
    entry = posted(client, as_user(world.nurse), world.patient_id, "care-note", example("care-note"))
    sign_in(client, db, settings, world.physician)
    r = client.get(f"/entries/{entry['id']}")
    assert r.status_code == 200
    assert "療養支援記録" in r.text and "仙骨部" in r.text and "褥瘡" in r.text


def test_outsider_gets_the_not_found_page(client, db, settings, world, as_user):
    entry = posted(client, as_user(world.nurse), world.patient_id, "message", {"text": "外部秘"})
    sign_in(client, db, settings, world.outsider)
    for path in (f"/patients/{world.patient_id}/timeline", f"/entries/{entry['id']}"):
        r = client.get(path)
        assert r.status_code == 404 and "外部秘" not in r.text and "山田" not in r.text


def test_summary_card_shows_the_conditions_of_a_conditional_cpr_wish(client, db, settings, world, as_user):
    data = example("acp")
    data["treatment_preferences"].update(cpr="conditional", cpr_condition="回復の見込みがあるときのみ")
    posted(client, as_user(world.physician), world.patient_id, "acp", data)
    sign_in(client, db, settings, world.nurse)
    page = client.get(f"/patients/{world.patient_id}/timeline").text
    assert "心肺蘇生: 条件付き（回復の見込みがあるときのみ）" in " ".join(page.split())


def test_summary_card_points_to_the_medication_notebook_when_no_list_was_typed(
        client, db, settings, world, as_user):
    nurse = as_user(world.nurse)
    r = upload(client, nurse, world.patient_id, "emergency-info", png_bytes(), "okusuri-techo.png")
    assert r.status_code == 201, r.text
    data = example("emergency-info", medication_notebook_attachment_ids=[r.json()["id"]])
    del data["medications"]
    emergency = posted(client, nurse, world.patient_id, "emergency-info", data,
                       attachment_ids=[r.json()["id"]])
    card = client.get(f"/api/v1/patients/{world.patient_id}/summary", headers=nurse).json()
    assert card["medications"] == []
    assert card["emergency"]["medication_notebook_attachment_ids"] == [r.json()["id"]]
    sign_in(client, db, settings, world.physician)
    page = client.get(f"/patients/{world.patient_id}/timeline").text
    assert f'href="/entries/{emergency["id"]}">お薬手帳（写し）（1）</a>' in page
