"""A break-the-glass holder sees the emergency scope of the timeline (emergency sheet, ACP) and nothing else."""

from __future__ import annotations

from tests.factories import PASSWORD, make_org, make_user
from tests.timeline.support import post, posted


def test_break_glass_holder_reads_only_emergency_and_acp_entries_and_cannot_write(
    client, db, world, as_user, team
):
    doctor = as_user(world.physician)
    emergency = posted(client, doctor, world.patient_id, "emergency-info")
    acp = posted(client, doctor, world.patient_id, "acp")
    posted(client, doctor, world.patient_id, "message", {"text": "家族の事情（救急には不要）"})
    posted(client, as_user(team.care_manager), world.patient_id, "admission-info")
    er = make_user(db, make_org(db, "救命救急センター", "hospital"), profession="physician", name="救急 医師")
    er_headers = as_user(er)
    found = client.post("/api/v1/patients/lookup", headers=er_headers,
                        json={"name_kana": "ヤマダ ハナコ", "birth_date": "1938-04-02"})
    assert found.status_code == 200 and found.json()
    reason = {"reason_code": "emergency_transport", "reason": "心肺停止で搬送", "password": PASSWORD,
              "confirm": True}
    grant = client.post(f"/api/v1/patients/{world.patient_id}/break-glass", headers=er_headers, json=reason)
    assert grant.status_code == 201, grant.text

    feed = client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=er_headers)
    assert feed.status_code == 200
    assert sorted(e["id"] for e in feed.json()["items"]) == sorted([emergency["id"], acp["id"]])
    assert "家族の事情" not in feed.text
    card = client.get(f"/api/v1/patients/{world.patient_id}/summary", headers=er_headers).json()
    assert card["resuscitation_wish"] == "dnar" and card["acp"]["entry_id"] == acp["id"]
    assert card["key_person"] is None, "the key person is on the admission sheet, outside the emergency scope"
    assert post(client, er_headers, world.patient_id, "emergency-info").status_code == 404
