"""The tablet pages rendered by the real app (cookie sessions): what each shows, to whom, and how."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

from renkei.db.types import utcnow
from renkei.timeline.models import TimelineEntry
from tests.factories import PASSWORD, make_org, make_patient, make_user
from tests.timeline.support import amend, example, join_team, posted

SCRIPT_TAG = re.compile(r"<script[^>]*>", re.I)


def _no_inline_script(html: str) -> None:
    # CSP is script-src 'self': an inline script would silently not run.
    tags = SCRIPT_TAG.findall(html)
    assert tags and all(" src=" in tag or 'type="application/json"' in tag for tag in tags), tags
    assert " style=" not in html and "onclick" not in html


def test_patient_list_flags_urgent_unread_and_sheets_waiting_for_my_acknowledgement(
    client, browse, world, team, as_user,
):
    posted(client, as_user(world.physician), world.patient_id, "message", {"text": "至急の連絡です"},
           priority="urgent", recipients=[{"user_id": str(world.nurse.id)}])
    page = browse(world.nurse).get("/patients")
    assert page.status_code == 200
    _no_inline_script(page.text)
    row = page.text[page.text.index(f'data-patient-id="{world.patient_id}"'):]
    row = row[: row.index("</li>")]
    assert "至急 1件" in row and "未読 1件" in row and "受領確認待ち 1件" in row
    assert f'href="/patients/{world.patient_id}/timeline"' in row


def test_an_overdue_acknowledgement_is_flagged_on_the_list_and_the_addressed_pages(
    browse, db, world, team, as_user,
):
    sheet = posted(browse(team.msw), as_user(team.msw), world.patient_id, "discharge-info",
                   example("discharge-info"), recipients=[{"organisation_id": str(team.care_office.id)}])
    row = db.get(TimelineEntry, uuid.UUID(sheet["id"]))
    row.posted_at = utcnow() - timedelta(hours=30)
    db.flush()
    listed = browse(team.care_manager).get("/patients").text
    assert "受領確認 期限超過 1件" in listed
    received = browse(team.care_manager).get("/addressed").text
    assert "退院・退所情報記録書" in received and "受領確認の期限超過" in received
    assert f'data-api="/api/v1/entries/{sheet["id"]}/acknowledge"' in received
    assert "山田 花子" in received
    sent = browse(team.msw).get("/addressed?show=sent").text
    assert "みどり居宅介護支援事業所: 受領確認の期限超過" in sent
    assert f'/api/v1/entries/{sheet["id"]}/acknowledge' not in sent


def test_the_name_filter_never_puts_a_name_in_the_url(browse, db, keyring, world):
    # Shared tablets keep browser history: the list is filtered by the page's script, and a `?q=` is ignored.
    make_patient(db, keyring, world.nurse, name="佐々木 一郎", name_kana="ササキ イチロウ", birth_date="1940-01-01")
    nurse = browse(world.nurse)
    page = nurse.get("/patients").text
    assert 'data-filter-text="佐々木 一郎 ササキ イチロウ"' in page and 'data-filter-target="#patient-list"' in page
    search = page[page.index('role="search"'):]
    search = search[:search.index("</div>")]
    assert "<form" not in search and "name=" not in search, "nothing a browser would submit"
    assert 'method="get"' not in page.lower()
    ignored = nurse.get("/patients", params={"q": "ササキ"}).text
    assert "佐々木 一郎" in ignored and "山田 花子" in ignored


def test_registrar_without_consent_is_sent_to_the_registration_page_not_the_timeline(browse, db, keyring, world):
    pid = make_patient(db, keyring, world.nurse, name="未同意 花子", name_kana="ミドウイ ハナコ")
    page = browse(world.nurse).get("/patients").text
    assert f'href="/patients/{pid}"' in page and "同意未登録" in page
    registration = browse(world.nurse).get(f"/patients/{pid}").text
    assert "有効な同意がないため" in registration
    assert browse(world.nurse).get(f"/patients/{pid}/timeline").status_code == 404


def test_timeline_shows_kind_author_profession_read_state_and_filters_by_sheet(browse, world, team, as_user):
    posted(browse(world.nurse), as_user(world.nurse), world.patient_id, "care-note", example("care-note"))
    posted(browse(world.nurse), as_user(world.nurse), world.patient_id, "message", {"text": "本日の訪問終了"})
    doctor = browse(world.physician)
    page = doctor.get(f"/patients/{world.patient_id}/timeline")
    html = page.text
    _no_inline_script(html)
    assert page.headers["cache-control"] == "no-store"
    assert 'class="kind-care-note is-unread' in html and 'class="kind-message is-unread' in html
    assert "看護 花子（看護師・テスト訪問看護ステーション）" in html
    assert "表示中をすべて既読にする" in html and "現在の状態" in html
    filtered = doctor.get(f"/patients/{world.patient_id}/timeline", params={"kind": "message"}).text
    assert "kind-message" in filtered and "kind-care-note is" not in filtered and "絞り込み中" in filtered


def test_mark_all_read_button_carries_exactly_the_unread_entries_of_the_page(browse, world, as_user):
    a = posted(browse(world.nurse), as_user(world.nurse), world.patient_id, "message", {"text": "一件目"})
    b = posted(browse(world.nurse), as_user(world.nurse), world.patient_id, "message", {"text": "二件目"})
    doctor = browse(world.physician)
    doctor.get(f"/entries/{a['id']}")
    html = doctor.get(f"/patients/{world.patient_id}/timeline").text
    ids = re.search(r'data-entry-ids="([^"]*)"', html).group(1).split(",")
    assert ids == [b["id"]]


def test_entry_page_labels_enum_codes_and_lists_versions_after_an_amendment(browse, world, as_user):
    nurse_api = as_user(world.nurse)
    note = posted(browse(world.nurse), nurse_api, world.patient_id, "care-note", example("care-note"))
    client = browse(world.nurse)
    amended = amend(client, nurse_api, note, example("care-note"), "部位の記載を訂正")
    assert amended.status_code == 201, amended.text
    page = browse(world.physician).get(f"/entries/{amended.json()['id']}").text
    assert "褥瘡の有無" in page and "present" not in page.split("記録の内容")[1].split("</table>")[0]
    assert "版の履歴" in page and "第1版" in page and "第2版" in page and "部位の記載を訂正" in page
    assert "訂正する" not in page  # only the author amends
    own = browse(world.nurse).get(f"/entries/{amended.json()['id']}").text
    assert f'href="/entries/{amended.json()["id"]}/amend"' in own and "誤記入として取り消す" in own


def test_acknowledge_button_is_offered_to_the_addressee_only(browse, world, team, as_user):
    sheet = posted(browse(team.msw), as_user(team.msw), world.patient_id, "discharge-info",
                   example("discharge-info"), recipients=[{"user_id": str(team.care_manager.id)}])
    mine = browse(team.care_manager).get(f"/entries/{sheet['id']}").text
    assert f'data-api="/api/v1/entries/{sheet["id"]}/acknowledge"' in mine and 'data-ack-state="waiting"' in mine
    theirs = browse(world.nurse).get(f"/entries/{sheet['id']}").text
    assert "/acknowledge" not in theirs


def test_new_entry_chooser_offers_only_the_sheets_my_profession_may_write(browse, db, world):
    pharmacy = make_org(db, "テスト薬局", "pharmacy")
    pharmacist = join_team(db, world.patient_id, world.physician, pharmacy, profession="pharmacist",
                           team_role="pharmacist", name="薬剤 三郎")
    page = browse(pharmacist).get(f"/patients/{world.patient_id}/entries/new").text
    assert "sheet=care-note" in page and "sheet=message" in page
    assert "sheet=physician-visit" not in page and "sheet=discharge-info" not in page
    assert browse(pharmacist).get(f"/patients/{world.patient_id}/entries/new?sheet=physician-visit").status_code == 404


def test_entry_form_is_generated_from_the_json_schema(browse, world, team):
    page = browse(team.msw).get(f"/patients/{world.patient_id}/entries/new", params={"sheet": "discharge-info"})
    assert page.status_code == 200
    html = page.text
    _no_inline_script(html)
    # Sections, a date picker, Japanese enum labels as radios, a multi-choice, a repeatable group with a template.
    assert '<legend>基本事項 <span class="badge urgent">必須</span></legend>' in html
    assert 'data-path="/header/record_date" data-type="string" type="date"' in html
    assert 'value="outpatient" data-path="/admission/follow_up/method" data-type="enum"> 通院' in html
    assert 'data-path="/condition/mobility" data-type="multi"> 杖' in html
    assert 'data-repeat="/contact_log" data-placeholder="__i0__" data-max="3" data-min="1"' in html
    assert 'data-path="/contact_log/__i0__/informant_name"' in html
    # Every field has a label bound to it.
    ids = set(re.findall(r'<(?:input|select|textarea)[^>]* id="([^"]+)"', html))
    labelled = set(re.findall(r'<label[^>]* for="([^"]+)"', html)) | set(re.findall(r'aria-labelledby="([^"]+)-label"', html))
    unlabelled = {i for i in ids if i not in labelled and not i.endswith("photo_attachment_ids")}
    radios = set(re.findall(r'<label class="choice"><input type="(?:radio|checkbox)"[^>]*>', html))
    assert radios and not unlabelled - {"urgent-switch"}
    # Recipients are today's team (not me), by person and by office.
    assert 'data-recipient="user" value="%s"' % team.care_manager.id in html
    assert 'data-recipient="organisation" value="%s"' % team.care_office.id in html
    assert 'data-recipient="user" value="%s"' % team.msw.id not in html


def test_amend_form_is_prefilled_for_the_author_and_refused_to_others(browse, world, as_user):
    note = posted(browse(world.nurse), as_user(world.nurse), world.patient_id, "care-note", example("care-note"))
    page = browse(world.nurse).get(f"/entries/{note['id']}/amend")
    assert page.status_code == 200 and 'data-mode="amend"' in page.text and "訂正理由" in page.text
    prefill = re.search(r'<script type="application/json" id="entry-prefill">(.*?)</script>', page.text, re.S)
    assert json.loads(prefill.group(1))["skin"]["site"] == example("care-note")["skin"]["site"]
    assert browse(world.physician).get(f"/entries/{note['id']}/amend").status_code == 403


def test_a_draft_is_resumed_in_the_form_only_by_its_author(browse, world, as_user):
    draft = posted(browse(world.nurse), as_user(world.nurse), world.patient_id, "message", {"text": "下書きの本文"},
                   status="draft")
    chooser = browse(world.nurse).get(f"/patients/{world.patient_id}/entries/new").text
    assert f"draft={draft['id']}" in chooser and "自分の下書き" in chooser
    form = browse(world.nurse).get(f"/patients/{world.patient_id}/entries/new", params={"draft": draft["id"]})
    assert form.status_code == 200 and 'data-mode="draft"' in form.text
    assert f'data-entry-id="{draft["id"]}" data-etag="&#34;1.1&#34;"' in form.text
    prefill = re.search(r'<script type="application/json" id="entry-prefill">(.*?)</script>', form.text, re.S)
    assert json.loads(prefill.group(1)) == {"text": "下書きの本文"}
    other = browse(world.physician).get(f"/patients/{world.patient_id}/entries/new", params={"draft": draft["id"]})
    assert other.status_code == 404 and "下書きの本文" not in other.text


def test_team_page_offers_adding_and_ending_members_through_the_api(browse, world):
    page = browse(world.physician).get(f"/patients/{world.patient_id}").text
    assert f'data-api="/api/v1/patients/{world.patient_id}/team" data-method="POST"' in page
    assert 'data-method="DELETE"' in page and "看護 花子" in page and "訪問看護師" in page


def test_break_the_glass_banner_stays_on_every_page_while_the_grant_lasts(client, browse, db, world, as_user):
    hospital = make_org(db, "救急病院", "hospital")
    er = make_user(db, hospital, profession="physician", name="救急 太郎")
    api = as_user(er)
    found = client.post("/api/v1/patients/lookup", headers=api,
                        json={"name_kana": "ヤマダ ハナコ", "birth_date": "1938-04-02"})
    assert found.status_code == 200, found.text
    granted = client.post(f"/api/v1/patients/{world.patient_id}/break-glass", headers=api,
                          json={"reason_code": "emergency_transport", "reason": "救急搬送", "password": PASSWORD,
                                "confirm": True})
    assert granted.status_code == 201, granted.text
    for path in ("/patients", "/addressed", "/emergency"):
        html = browse(er).get(path).text
        assert 'id="bg-banner"' in html and f"/patients/{world.patient_id}/timeline" in html
        assert "山田" not in html
    assert 'id="bg-banner"' not in browse(world.nurse).get("/patients").text


def test_pages_switch_to_english(browse, world):
    client = browse(world.nurse)
    client.cookies.set("lang", "en")
    html = client.get(f"/patients/{world.patient_id}/timeline").text
    assert 'lang="en"' in html and ">Records</a>" in html and "Mark all shown as read" not in html
    assert "Could not reach the server" in html
