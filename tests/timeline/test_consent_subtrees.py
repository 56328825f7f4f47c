"""Parts of a sheet with a category of their own (ACP wishes, psychiatric notes) follow the consent: withheld
from readers it does not cover, wherever entry data leaves the system, and carried over on amendment."""

from __future__ import annotations

import uuid

import pytest

from renkei.patients import keys
from renkei.timeline.models import TimelineEntry
from tests.factories import PASSWORD, exclude_categories, make_org, make_user
from tests.timeline.support import amend, example, post, posted


def stored(db, keyring, entry_id: str) -> dict:
    row = db.get(TimelineEntry, uuid.UUID(entry_id))
    return keys.open_json(db, keyring, row.patient_id, row.payload_ct, aad="timeline_entry.payload_ct",
                          binding=entry_id)


def get(client, headers, entry_id: str) -> dict:
    r = client.get(f"/api/v1/entries/{entry_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def feed_item(client, headers, patient_id, entry_id: str) -> dict:
    items = client.get(f"/api/v1/patients/{patient_id}/timeline", headers=headers).json()["items"]
    return next(e for e in items if e["id"] == entry_id)


@pytest.mark.parametrize(("sheet", "author", "excluded", "withheld", "kept"), [
    ("emergency-info", "physician", "acp", ["/resuscitation"], "allergies"),
    ("physician-visit", "physician", "acp", ["/end_of_life"], "cautions"),
    ("admission-info", "care_manager", "psychiatric",
     ["/function/behaviour", "/function/behaviour_other_text"], "family"),
    ("discharge-info", "msw", "psychiatric", ["/condition/cognition", "/condition/cognition_other_text"],
     "contact_log"),
])
def test_a_part_the_consent_excludes_is_withheld_from_the_entry_its_history_and_the_timeline(
    client, keyring, world, as_user, team, db, sheet, author, excluded, withheld, kept,
):
    writer = {"physician": world.physician, "care_manager": team.care_manager, "msw": team.msw}[author]
    entry = posted(client, as_user(writer), world.patient_id, sheet)
    top = withheld[0].split("/")[1]
    assert top in entry["data"] and entry["withheld"] == []
    exclude_categories(db, keyring, world.patient_id, excluded)

    nurse = as_user(world.nurse)
    seen = get(client, nurse, entry["id"])
    assert seen["withheld"] == withheld and kept in seen["data"]
    for pointer in withheld:
        *parents, last = pointer.strip("/").split("/")
        node = seen["data"]
        for key in parents:
            node = node.get(key, {})
        assert last not in node
    listed = feed_item(client, nurse, world.patient_id, entry["id"])
    assert (listed["data"], listed["withheld"]) == (seen["data"], seen["withheld"])
    [version] = client.get(f"/api/v1/entries/{entry['id']}/history", headers=nurse).json()
    assert (version["data"], version["withheld"]) == (seen["data"], seen["withheld"])


def test_without_acp_consent_the_summary_withholds_the_resuscitation_wish_but_break_the_glass_sees_it(
    client, db, keyring, world, as_user,
):
    emergency = posted(client, as_user(world.physician), world.patient_id, "emergency-info")
    exclude_categories(db, keyring, world.patient_id, "acp")
    card = client.get(f"/api/v1/patients/{world.patient_id}/summary", headers=as_user(world.nurse)).json()
    assert card["resuscitation_wish"] is None and card["emergency"]["resuscitation"] == {}
    assert card["withheld"] == ["/resuscitation_wish", "/emergency/resuscitation"]
    assert card["resuscitation_conflict"] is False and card["acp"] is None
    assert [a["substance"] for a in card["allergies"]] == ["ペニシリン系抗菌薬", "そば"]
    assert "dnar" not in client.get(f"/api/v1/patients/{world.patient_id}/summary",
                                    headers=as_user(world.nurse)).text

    er = as_user(make_user(db, make_org(db, "救命救急センター", "hospital"), profession="physician"))
    client.post("/api/v1/patients/lookup", headers=er,
                json={"name_kana": "ヤマダ ハナコ", "birth_date": "1938-04-02"})
    reason = {"reason_code": "emergency_transport", "reason": "心肺停止で搬送", "password": PASSWORD,
              "confirm": True}
    grant = client.post(f"/api/v1/patients/{world.patient_id}/break-glass", headers=er, json=reason)
    assert grant.status_code == 201, grant.text
    emergency_card = client.get(f"/api/v1/patients/{world.patient_id}/summary", headers=er).json()
    assert emergency_card["resuscitation_wish"] == "dnar" and emergency_card["withheld"] == []
    seen = get(client, er, emergency["id"])
    assert seen["data"]["resuscitation"]["wish"] == "dnar" and seen["withheld"] == []


def test_amending_without_psychiatric_consent_carries_the_withheld_part_over_unchanged(
    client, db, keyring, world, as_user, team,
):
    manager = as_user(team.care_manager)
    data = example("admission-info")
    data["function"]["behaviour"] = ["insomnia", "wandering"]
    first = posted(client, manager, world.patient_id, "admission-info", data)
    exclude_categories(db, keyring, world.patient_id, "psychiatric")

    shown = get(client, manager, first["id"])
    assert "behaviour" not in shown["data"]["function"]
    corrected = shown["data"]
    corrected["wishes"]["interests"] = "庭の花の手入れ、ラジオ体操"
    r = amend(client, manager, shown, corrected, "趣味の追記")
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["withheld"] == ["/function/behaviour", "/function/behaviour_other_text"]
    assert "behaviour" not in second["data"]["function"]
    kept = stored(db, keyring, second["id"])
    assert kept["function"]["behaviour"] == ["insomnia", "wandering"]
    assert kept["wishes"]["interests"] == "庭の花の手入れ、ラジオ体操"


def test_supplying_a_part_the_consent_does_not_share_with_me_is_refused_naming_it(
    client, db, keyring, world, as_user, team,
):
    manager = as_user(team.care_manager)
    first = posted(client, manager, world.patient_id, "admission-info")
    exclude_categories(db, keyring, world.patient_id, "psychiatric")
    changed = example("admission-info")
    changed["function"]["behaviour"] = ["none"]
    r = amend(client, manager, get(client, manager, first["id"]), changed, "精神面の更新")
    assert r.status_code == 422
    assert [f["path"] for f in r.json()["fields"]] == ["/data/function/behaviour"]
    history = client.get(f"/api/v1/entries/{first['id']}/history", headers=manager).json()
    assert len(history) == 1
    new = post(client, manager, world.patient_id, "admission-info", changed)
    assert new.status_code == 422
    assert [f["path"] for f in new.json()["fields"]] == ["/data/function/behaviour"]


def test_a_required_part_i_may_not_see_is_not_demanded_of_me(client, db, keyring, world, as_user):
    exclude_categories(db, keyring, world.patient_id, "acp")
    nurse = as_user(world.nurse)
    data = example("emergency-info")
    del data["resuscitation"]
    r = post(client, nurse, world.patient_id, "emergency-info", data)
    assert r.status_code == 201, r.text
    assert r.json()["withheld"] == ["/resuscitation"]
