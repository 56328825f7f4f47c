"""Server-rendered timeline and entry pages (cookie session): Japanese first, team only."""

from __future__ import annotations

from renkei.auth import service as auth_service
from tests.timeline.support import example, posted


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
