"""A paper entry and its transcription marked entered in error at the same moment, on PostgreSQL (see
tests/interleave.py)."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from renkei.printing import hooks
from renkei.printing.models import PaperIntake
from tests import interleave
from tests.crypto import live
from tests.printing.support import photo
from tests.timeline.support import example

pytestmark = interleave.ONLY_ON_POSTGRES
settings = interleave.committed_settings  # the fixture, under the name these tests use


def _filed_and_transcribed(settings, team: interleave.Team) -> tuple[dict, dict]:
    """A care note printed blank, photographed and filed by the nurse, then transcribed by her."""
    async def go(client: httpx.AsyncClient) -> tuple[dict, dict]:
        pdf = await client.get(f"/print/blank/care-note.pdf?patient_id={team.patient_id}",
                               headers=team.physician)
        assert pdf.status_code == 200, pdf.text
        filed = await client.post("/api/v1/paper-intake", files={"file": ("scan.jpg", photo(pdf.content))},
                                  headers={**team.nurse, "accept": "application/json"})
        assert filed.status_code == 201, filed.text
        typed = await client.post(f"/api/v1/patients/{team.patient_id}/entries", headers=team.nurse,
                                  json={"sheet": "care-note", "version": 1, "data": example("care-note"),
                                        "paper_intake_id": filed.json()["id"]})
        assert typed.status_code == 201, typed.text
        return filed.json(), typed.json()
    [(filed, typed)] = interleave.together(settings, go)
    return filed, typed


def test_withdrawing_a_paper_form_and_its_transcription_together_leaves_the_intake_withdrawn(
        settings, monkeypatch):
    team = interleave.team(settings)
    filed, typed = _filed_and_transcribed(settings, team)
    # The paper entry's withdrawal has set the intake to "withdrawn" and is about to commit when the
    # transcription's withdrawal, which would make it "awaiting transcription" again, brings the intake up
    # to date too.
    hold = interleave.hold_first_call(monkeypatch, settings, hooks, "precommit")
    paper, transcription = interleave.run(
        settings,
        lambda c: c.post(f"/api/v1/entries/{filed['entry_id']}/entered-in-error", headers=team.nurse,
                         json={"reason": "別の患者の用紙"}),
        lambda c: c.post(f"/api/v1/entries/{typed['id']}/entered-in-error", headers=team.nurse,
                         json={"reason": "別の患者の用紙の転記"}),
        hold)
    assert hold.outcome == interleave.WAITED
    assert (paper.status_code, transcription.status_code) == (200, 200), (paper.text, transcription.text)
    with live.committing_session(settings) as session:
        intake = session.scalars(select(PaperIntake).where(PaperIntake.id == uuid.UUID(filed["id"]))).one()
    assert (intake.status, intake.transcribed_entry_id) == ("withdrawn", None)
