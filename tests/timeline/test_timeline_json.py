"""The timeline's JSON is encoded straight from the page's fields (views.encode), not from validated models:
it must be, byte for byte, what the TimelinePage model gives, for every sheet and every state of an entry."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from renkei.timeline import queries, views
from renkei.timeline.schemas import TimelinePage, TimelineQuery
from tests.factories import actor_of
from tests.printing.support import intake, printout
from tests.timeline.support import amend, example, png_bytes, posted, upload

def _fill(client, world, team, doctor, nurse, care_manager, msw) -> None:
    pid = world.patient_id
    authors = {"admission-info": care_manager, "discharge-info": msw, "emergency-info": doctor, "acp": doctor,
               "physician-visit": doctor, "care-note": nurse, "message": nurse}
    for sheet, author in authors.items():
        posted(client, author, pid, sheet)
    # Addressed, one addressee acknowledged; urgent; amended (ACP superseded by its new version).
    sent = posted(client, msw, pid, "discharge-info", recipients=[
        {"organisation_id": str(team.care_office.id)}, {"user_id": str(world.nurse.id)}])
    assert client.post(f"/api/v1/entries/{sent['id']}/acknowledge", headers=care_manager).status_code == 200
    posted(client, nurse, pid, "message", priority="urgent")
    acp = posted(client, doctor, pid, "acp")
    assert amend(client, doctor, acp, example("acp")).status_code == 201
    # Entered in error, with its reason; a photo attached; read receipts; a paper form awaiting transcription.
    wrong = posted(client, nurse, pid, "care-note")
    assert client.post(f"/api/v1/entries/{wrong['id']}/entered-in-error", headers=nurse,
                       json={"reason": "別の利用者の記録でした"}).status_code == 200
    attachment = upload(client, nurse, pid, "care-note", png_bytes()).json()["id"]
    seen = posted(client, nurse, pid, "care-note", attachment_ids=[attachment])
    assert client.post(f"/api/v1/entries/{seen['id']}/read", headers=doctor).status_code in (200, 204)
    pdf = printout(client, doctor, f"/print/blank/care-note.pdf?patient_id={pid}")
    assert intake(client, nurse, pdf, "scan.pdf").status_code == 201


def test_timeline_json_is_byte_for_byte_the_page_models_json(client, db, settings, keyring, world, team,
                                                             as_user):
    doctor, nurse, care_manager = as_user(world.physician), as_user(world.nurse), as_user(team.care_manager)
    msw = as_user(team.msw)
    _fill(client, world, team, doctor, nurse, care_manager, msw)
    pages = 0
    for headers in (doctor, nurse, care_manager, msw):
        url = f"/api/v1/patients/{world.patient_id}/timeline?limit=4"
        while url:
            r = client.get(url, headers=headers)
            assert r.status_code == 200, r.text
            assert r.content == TimelinePage.model_validate_json(r.content).model_dump_json().encode()
            cursor = r.json()["next_cursor"]
            url = f"/api/v1/patients/{world.patient_id}/timeline?limit=4&cursor={cursor}" if cursor else ""
            pages += 1
    assert pages >= 12


def test_timeline_json_equals_the_validated_page_in_process(client, db, settings, keyring, world, team,
                                                            as_user):
    doctor, nurse, care_manager = as_user(world.physician), as_user(world.nurse), as_user(team.care_manager)
    _fill(client, world, team, doctor, nurse, care_manager, as_user(team.msw))
    for user in (world.physician, world.nurse, team.care_manager):
        for query in (TimelineQuery(limit=50), TimelineQuery(limit=50, kind=["acp", "discharge-info"]),
                      TimelineQuery(limit=50, unread=True)):
            kwargs = dict(keyring=keyring, settings=settings, actor=actor_of(user),
                          patient_id=world.patient_id, query=query)
            model = queries.timeline(db, **kwargs)
            assert model.items or query.unread
            assert queries.timeline_json(db, **kwargs) == model.model_dump_json().encode()


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=15,
)


@hypothesis_settings(max_examples=150)
@given(data=st.dictionaries(st.text(max_size=12), _values, max_size=6))
def test_any_sheet_data_encodes_to_the_same_json_values_as_the_models(data):
    body = {"any": data}
    assert json.loads(views.encode(body)) == json.loads(TypeAdapter(dict).dump_json(body))


def test_feed_entries_equal_the_entry_routes_view_of_them(client, world, team, as_user):
    """The feed reads names and the current ACP in its own query; one entry's route looks them up: the two
    must agree for every entry state (authors, addressees, who acknowledged, entered in error, superseded)."""
    doctor, nurse, care_manager = as_user(world.physician), as_user(world.nurse), as_user(team.care_manager)
    msw = as_user(team.msw)
    _fill(client, world, team, doctor, nurse, care_manager, msw)
    for headers in (doctor, nurse, msw):
        feed = client.get(f"/api/v1/patients/{world.patient_id}/timeline?limit=50", headers=headers).json()
        assert len(feed["items"]) >= 12
        for item in feed["items"]:
            one = client.get(f"/api/v1/entries/{item['id']}", headers=headers).json()
            # Opening an entry marks it read, and only the single view lists who has read it.
            one.pop("read_by"), item.pop("read_by"), one.pop("read_by_me"), item.pop("read_by_me")
            assert item == one
    acps = [e for e in feed["items"] if e["sheet"] == "acp"]
    assert sorted(e["acp_current"] for e in acps) == [False, True]
    named = [e for e in feed["items"] if e["recipients"]]
    assert named and all(r["organisation_name"] or r["user_name"] for e in named for r in e["recipients"])
    assert any(e["entered_in_error"] and e["entered_in_error"]["by_name"] for e in feed["items"])
