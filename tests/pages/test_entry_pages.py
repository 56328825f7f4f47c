"""The entry pages (cookie sessions): the timeline row of an amended record, the entry form's widgets."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from renkei.timeline.models import TimelineEntry
from tests.factories import exclude_categories
from tests.timeline.support import amend, example, png_bytes, posted, upload

JST = ZoneInfo("Asia/Tokyo")


def _row(html: str, entry_id: str) -> str:
    row = html[html.index(f'data-entry-id="{entry_id}"'):]
    return row[: row.index("</li>")]


def test_an_amended_record_shows_when_it_was_first_posted_and_that_it_was_amended(browse, db, world, as_user):
    nurse = as_user(world.nurse)
    note = posted(browse(world.nurse), nurse, world.patient_id, "message", {"text": "6月1日の連絡"})
    row = db.get(TimelineEntry, uuid.UUID(note["id"]))
    row.posted_at = row.record_posted_at = datetime(2025, 6, 1, 9, 0, tzinfo=JST)
    db.flush()
    corrected = amend(browse(world.nurse), nurse, note, {"text": "6月1日の連絡（訂正）"}, "誤字").json()
    html = browse(world.physician).get(f"/patients/{world.patient_id}/timeline").text
    shown = _row(html, corrected["id"])
    assert "2025-06-01 09:00" in shown and "訂正あり（第2版）" in shown
    amended_at = datetime.fromisoformat(corrected["posted_at"].replace("Z", "+00:00")).astimezone(JST)
    assert "訂正あり <time" in shown and amended_at.strftime("%Y-%m-%d %H:%M") in shown


def test_every_sheets_form_carries_a_file_field_for_the_entry_itself(browse, world, team):
    for sheet, user in (("message", world.nurse), ("care-note", world.nurse), ("acp", world.physician),
                        ("admission-info", team.care_manager), ("discharge-info", team.msw)):
        html = browse(user).get(f"/patients/{world.patient_id}/entries/new?sheet={sheet}").text
        field = html[html.index('data-attachments="/attachment_ids"'):]
        field = field[: field.index("</div>\n</div>") if "</div>\n</div>" in field else 2000]
        assert "data-envelope" in field and 'data-max="20"' in field
        assert 'data-upload="/attachment_ids"' in field
        assert "添付ファイル（写真・スキャン・PDF）" in html, sheet


def test_the_amendment_form_starts_with_the_files_the_entry_carries(browse, client, world, as_user):
    nurse = as_user(world.nurse)
    photo = upload(client, nurse, world.patient_id, "message", png_bytes()).json()["id"]
    note = posted(client, nurse, world.patient_id, "message", {"text": "写真つき"}, attachment_ids=[photo])
    html = browse(world.nurse).get(f"/entries/{note['id']}/amend").text
    files = html[html.index('id="entry-prefill-files">') + len('id="entry-prefill-files">'):]
    assert json.loads(files[: files.index("</script>")]) == [photo]
    page = browse(world.physician).get(f"/entries/{note['id']}").text
    assert f'<a href="/api/v1/attachments/{photo}"><img' in page[page.index('id="entry-files"'):]
    timeline = browse(world.physician).get(f"/patients/{world.patient_id}/timeline").text
    assert "添付1件" in _row(timeline, note["id"])


def test_parts_outside_the_consent_are_left_out_of_the_form_and_marked_on_the_entry(
    browse, client, db, keyring, world, as_user, team,
):
    entry = posted(client, as_user(team.care_manager), world.patient_id, "admission-info")
    exclude_categories(db, keyring, world.patient_id, "psychiatric")
    url = f"/patients/{world.patient_id}/entries/new?sheet=admission-info"
    form = browse(team.care_manager).get(url).text
    assert 'data-field="/function/behaviour"' not in form and 'data-field="/function/paralysis"' in form
    assert "同意の範囲外のため表示されません" in form and "精神面における療養上の問題" in form
    page = browse(world.nurse).get(f"/entries/{entry['id']}").text
    notice = page[page.index('id="withheld-notice"'):]
    assert notice.startswith('id="withheld-notice">同意の範囲外のため表示されません: 精神面における療養上の問題')
    assert "不眠" not in page


def test_an_acp_reference_is_a_choice_of_the_patients_acps_with_the_current_one_first_and_chosen(
    browse, client, world, as_user,
):
    doctor = as_user(world.physician)
    older = posted(client, doctor, world.patient_id, "acp", example("acp", record_date="2025-04-01"))
    current = posted(client, doctor, world.patient_id, "acp", example("acp", record_date="2025-05-12"))
    for sheet, pointer in (("emergency-info", "/resuscitation/acp_entry_id"),
                           ("physician-visit", "/end_of_life/acp_entry_id")):
        html = browse(world.physician).get(f"/patients/{world.patient_id}/entries/new?sheet={sheet}").text
        select = html[html.index(f'<select id="f{pointer.replace("/", "-")}"'):]
        select = select[: select.index("</select>")]
        options = re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', select)
        assert [(value, bool(chosen)) for value, chosen, _ in options] == [
            ("", False), (current["id"], True), (older["id"], False)]
        assert options[1][2] == "2025-05-12 医師 一郎（現在の記録）" and options[2][2].startswith("2025-04-01 ")
        assert "この患者さんの人生会議（ACP）記録から選びます" in html


def test_field_hints_follow_the_english_ui(browse, world):
    client = browse(world.physician)
    client.cookies.set("lang", "en")
    html = client.get(f"/patients/{world.patient_id}/entries/new?sheet=acp").text
    assert "People who join the discussion to presume the patient" in html
    assert "本人の意思を推定する者" not in html
    client.cookies.set("lang", "ja")
    assert "本人の意思を推定する者" in client.get(f"/patients/{world.patient_id}/entries/new?sheet=acp").text
