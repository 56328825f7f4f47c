"""Pages for paper: the intake page (result and the queue awaiting transcription), the paper entry with its
image and 転記する, the transcription form that carries the intake, and the links between both entries."""

from __future__ import annotations

import html
import re


from tests.printing.support import own_patient
from tests.timeline.support import post


def _transcribe_href(world, filed) -> str:
    return (f"/patients/{world.patient_id}/entries/new?sheet=care-note&version=1"
            f"&paper_intake_id={filed['id']}")


def test_intake_page_lists_paper_awaiting_transcription_with_a_transcribe_button(client, world, as_user, filed):
    page = client.get("/paper-intake", headers=as_user(world.physician))
    assert page.status_code == 200
    queue = html.unescape(page.text[page.text.index('id="awaiting-list"'):])
    assert "山田 花子" in queue and "紙・転記待ち" in queue and "療養支援記録" in queue
    assert _transcribe_href(world, filed) in queue
    assert 'capture="environment"' in page.text and 'name="patient_id"' in page.text
    other = client.get("/paper-intake", headers=as_user(world.outsider))
    assert other.status_code == 200 and "山田" not in other.text and filed["id"] not in other.text


def test_intake_page_says_where_the_form_was_filed_only_to_a_reader_of_it(client, world, as_user, filed):
    mine = client.get(f"/paper-intake?filed={filed['id']}", headers=as_user(world.nurse)).text
    result = mine[mine.index('id="pi-result"'):mine.index('id="awaiting-title"')]
    assert "山田 花子 様の「療養支援記録」として登録しました" in html.unescape(result)
    assert f'href="/entries/{filed["entry_id"]}"' in result
    theirs = client.get(f"/paper-intake?filed={filed['id']}", headers=as_user(world.outsider))
    assert theirs.status_code == 200 and 'id="pi-result"' not in theirs.text and "山田" not in theirs.text


def test_paper_entry_page_shows_the_image_and_transcribe_and_the_timeline_marks_it(client, world, as_user, filed):
    doctor = as_user(world.physician)
    page = html.unescape(client.get(f"/entries/{filed['entry_id']}", headers=doctor).text)
    assert f'<img src="/api/v1/attachments/{filed["attachment_id"]}"' in page
    assert "紙・転記待ち" in page and _transcribe_href(world, filed) in page
    timeline = client.get(f"/patients/{world.patient_id}/timeline", headers=doctor).text
    row = re.search(rf'data-entry-id="{filed["entry_id"]}".*?</li>', timeline, re.S).group(0)
    assert "紙・転記待ち" in row


def test_transcription_form_carries_the_intake_and_both_entries_link_to_each_other(client, world, as_user,
                                                                                   filed):
    nurse = as_user(world.nurse)
    form = client.get(_transcribe_href(world, filed), headers=nurse)
    assert form.status_code == 200
    assert f'data-paper-intake-id="{filed["id"]}"' in form.text and 'data-version="1"' in form.text
    assert f'/api/v1/attachments/{filed["attachment_id"]}' in form.text
    # No draft button: a draft cannot carry the paper link (entry_form.js does not autosave one either).
    assert 'id="save-draft"' not in form.text
    done = post(client, nurse, world.patient_id, "care-note", {"observations": "転記"},
                paper_intake_id=filed["id"]).json()
    paper = client.get(f"/entries/{filed['entry_id']}", headers=nurse).text
    assert "紙から転記済み" in paper and f'href="/entries/{done["id"]}"' in paper
    assert "transcribe-button" not in paper
    structured = client.get(f"/entries/{done['id']}", headers=nurse).text
    assert "紙から転記済み" in structured and f'href="/entries/{filed["entry_id"]}"' in structured


def test_transcription_form_of_another_patients_intake_is_404(client, db, keyring, world, as_user, filed):
    other = own_patient(db, keyring, world.physician, name="別人 太郎", name_kana="ベツジン タロウ")
    r = client.get(f"/patients/{other}/entries/new?sheet=care-note&paper_intake_id={filed['id']}",
                   headers=as_user(world.physician))
    assert r.status_code == 404


def test_a_printed_paper_entry_says_it_is_paper(client, world, as_user, filed):
    text = client.get(f"/print/entries/{filed['entry_id']}.html", headers=as_user(world.physician)).text
    assert "紙で記入された記録です" in text and "転記待ち" in text
