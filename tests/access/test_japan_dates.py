"""Calendar dates are Japanese dates: at 00:30 in Tokyo (15:30 UTC the day before) on a server running in UTC,
"today" is already the Tokyo day for consent validity, team memberships and ages."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from renkei.access import service as access
from renkei.access.service import Action
from renkei.db import types as db_types
from renkei.patients import service as patient_service
from renkei.patients.schemas import MembershipEnd, MembershipIn
from tests.factories import actor_of, grant_consent, make_org, make_patient, make_user

# 00:30 on 2 April in Tokyo is 15:30 on 1 April in UTC.
TOKYO_DAY = date(2026, 4, 2)
FROZEN = datetime(2026, 4, 1, 15, 30, tzinfo=UTC)


class _FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        return FROZEN.astimezone(tz) if tz is not None else FROZEN.replace(tzinfo=None)


@pytest.fixture
def half_past_midnight_in_tokyo(monkeypatch) -> Iterator[None]:
    """Freeze both clocks a date can come from (`time.time`, which `date.today()` reads, and `datetime.now`
    in renkei.db.types) at 00:30 JST, on a server whose local time zone is UTC."""
    previous_tz = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    monkeypatch.setattr(time, "time", lambda: FROZEN.timestamp())
    monkeypatch.setattr(db_types, "datetime", _FrozenDatetime)
    try:
        assert date.today() == TOKYO_DAY - timedelta(days=1), "the server's own calendar is still on 1 April"
        yield
    finally:
        monkeypatch.undo()
        if previous_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = previous_tz
        time.tzset()


def test_today_is_the_tokyo_date_whatever_the_servers_time_zone(half_past_midnight_in_tokyo):
    assert db_types.today_jst() == TOKYO_DAY
    assert access.today() == TOKYO_DAY


def test_a_consent_dated_today_in_tokyo_is_accepted_and_in_force(
    half_past_midnight_in_tokyo, db, keyring, world,
):
    consent_id = grant_consent(db, keyring, world.patient_id, world.physician, obtained_on=TOKYO_DAY)
    decision = access.can(db, actor_of(world.nurse), Action.read_clinical, world.patient_id)
    assert decision and decision.consent_id == consent_id


def test_a_member_added_today_in_tokyo_is_active_and_can_be_ended_today(
    half_past_midnight_in_tokyo, db, keyring, world,
):
    pharmacist = make_user(db, make_org(db, "みどり薬局", "pharmacy"), profession="pharmacist")
    added = patient_service.add_member(db, actor=actor_of(world.physician), patient_id=world.patient_id,
                                       data=MembershipIn(user_id=pharmacist.id, team_role="pharmacist"))
    assert added["start_date"] == TOKYO_DAY and added["active"] is True
    assert access.can(db, actor_of(pharmacist), Action.read_clinical, world.patient_id)
    ended = patient_service.end_member(db, actor=actor_of(world.physician), patient_id=world.patient_id,
                                       membership_id=added["id"], data=MembershipEnd(end_date=TOKYO_DAY))
    assert ended["end_date"] == TOKYO_DAY


def test_a_patient_turns_a_year_older_on_the_tokyo_birthday(half_past_midnight_in_tokyo, db, keyring, world):
    pid = make_patient(db, keyring, world.physician, name="誕生 花子", name_kana="タンジョウ ハナコ",
                       birth_date="1936-04-02", care_insurance_number=None, health_insurance_number=None)
    view = patient_service.get(db, keyring=keyring, actor=actor_of(world.physician), patient_id=pid)
    assert view.age == 90
