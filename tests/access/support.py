"""Shared arrangements for access tests: a team with a care manager, an emergency physician outside the
team, helpers that create the objects patient-scoped routes need, and the actor scenarios of the matrix."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.access.models import BreakGlassGrant
from renkei.config import Settings
from renkei.consent import service as consent_service
from renkei.consent.models import Consent
from renkei.crypto.keyring import Keyring
from renkei.db.types import today_jst, utcnow
from renkei.directory.models import Organisation, User
from renkei.patients import keys
from renkei.patients import service as patient_service
from renkei.patients.models import CareTeamMembership
from renkei.patients.schemas import MembershipEnd, MembershipIn
from tests.factories import PASSWORD, World, actor_of, auth_headers, grant_consent, make_org, make_user

# Everything identifying that tests.factories.patient_data() puts in the world's patient, and a
# marker written into entries: none of it may appear in a denial.
PATIENT_SECRETS = ("山田 花子", "山田", "ヤマダ", "みどり市中央1-2-3", "0120-000-000", "0000123456", "39123456")
ENTRY_MARKER = "行列試験の連絡本文"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
       b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def record_lapsed_consent(db: Session, keyring: Keyring, patient_id: uuid.UUID, recorder: User) -> uuid.UUID:
    """A new consent version that ran out yesterday, as if recorded a year ago (consents are never edited,
    and the service refuses to record one that is no longer valid): no consent is in force after it."""
    current = db.scalars(select(Consent).where(Consent.patient_id == patient_id,
                                               Consent.superseded_at.is_(None))).one()
    lapsed = Consent(id=uuid.uuid4(), patient_id=patient_id, version=current.version + 1, given_by="patient",
                     method="written", scope="blanket", obtained_on=today_jst() - timedelta(days=400),
                     valid_from=today_jst() - timedelta(days=400),
                     valid_until=today_jst() - timedelta(days=1),
                     details_ct=b"", recorded_by=recorder.id, recorded_org_id=recorder.organisation_id)
    lapsed.details_ct = keys.seal_json(db, keyring, patient_id, aad=consent_service.DETAILS_AAD,
                                       binding=f"consent:{lapsed.id}", value={"note": None})
    db.add(lapsed)
    db.flush()
    current.superseded_at, current.superseded_by = utcnow(), lapsed.id
    db.flush()
    return lapsed.id


def join_team(db: Session, world: World, user: User, team_role: str, by: User | None = None) -> uuid.UUID:
    out = patient_service.add_member(db, actor=actor_of(by or world.physician), patient_id=world.patient_id,
                                     data=MembershipIn(user_id=user.id, team_role=team_role, start_date=today_jst()))
    return out["id"]


@dataclass
class Ctx:
    """One test's world plus lazily created objects (entries, attachments...) for route examples."""

    client: TestClient
    db: Session
    settings: Settings
    keyring: Keyring
    world: World
    care_office: Organisation = field(init=False)
    care_manager: User = field(init=False)
    hospital: Organisation = field(init=False)
    er_physician: User = field(init=False)
    _cache: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.care_office = make_org(self.db, "試験居宅介護支援事業所", "care_management_office")
        self.care_manager = make_user(self.db, self.care_office, profession="care_manager", name="介護 支援子")
        self.hospital = make_org(self.db, "試験総合病院", "hospital")
        self.er_physician = make_user(self.db, self.hospital, profession="physician", name="救急 当直")
        self._cache["care_manager_membership"] = join_team(self.db, self.world, self.care_manager, "care_manager")

    @property
    def patient_id(self) -> uuid.UUID:
        return self.world.patient_id

    def headers(self, user: User) -> dict[str, str]:
        return auth_headers(self.db, self.settings, self.keyring, user)

    def _once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def consent_id(self) -> uuid.UUID:
        assert self.world.consent_id is not None
        return self.world.consent_id

    @property
    def membership_id(self) -> uuid.UUID:
        """The nurse's membership: a row a team manager may end."""
        return self.db.scalars(select(CareTeamMembership.id).where(
            CareTeamMembership.patient_id == self.patient_id, CareTeamMembership.user_id == self.world.nurse.id
        )).one()

    def _post(self, path: str, **kw: Any) -> dict[str, Any]:
        return self._post_as(self.care_manager, path, **kw)

    def _post_as(self, user: User, path: str, **kw: Any) -> dict[str, Any]:
        r = self.client.post(path, headers=self.headers(user), **kw)
        assert r.status_code in (200, 201), f"arranging {path} failed: {r.status_code} {r.text[:300]}"
        return r.json()

    @property
    def entry_id(self) -> str:
        """A posted message written by the matrix's team member (so author-only routes are theirs)."""
        return self._once("entry", lambda: self._post(
            f"/api/v1/patients/{self.patient_id}/entries",
            json={"sheet": "message", "data": {"text": ENTRY_MARKER}, "status": "final"},
        )["id"])

    @property
    def attachment_id(self) -> str:
        return self._once("attachment", lambda: self._post(
            f"/api/v1/patients/{self.patient_id}/attachments",
            files={"file": ("note.png", io.BytesIO(PNG), "image/png")}, data={"sheet": "care-note"},
        )["id"])

    @property
    def document_id(self) -> str:
        return self._once("document", lambda: self._post(
            f"/api/v1/patients/{self.patient_id}/consents/{self.consent_id}/attachments",
            files={"file": ("consent.pdf", io.BytesIO(PDF), "application/pdf")},
        )["id"])

    @property
    def hospital_admin(self) -> User:
        """The emergency physician's organisation administrator (reviews that organisation's grants)."""
        return self._once("hospital_admin", lambda: make_user(self.db, self.hospital, profession="nurse",
                                                              role="org_admin", keyring=self.keyring))

    @property
    def addressed_entry_id(self) -> str:
        """A message the physician addressed to the matrix's care manager."""
        return self._once("addressed", lambda: self._post_as(
            self.world.physician, f"/api/v1/patients/{self.patient_id}/entries",
            json={"sheet": "message", "data": {"text": ENTRY_MARKER}, "status": "final",
                  "recipients": [{"user_id": str(self.care_manager.id)}]},
        )["id"])

    @property
    def grant_id(self) -> uuid.UUID:
        return self._once("grant", lambda: uuid.UUID(self.break_glass(self.er_physician)["id"]))

    # -- arrangements used by scenarios ---------------------------------------------------

    def break_glass(self, user: User, otp: str | None = None) -> dict[str, Any]:
        """Exact lookup then a break-the-glass request, both through the API, as the given user."""
        headers = self.headers(user)
        found = self.client.post("/api/v1/patients/lookup", headers=headers,
                                 json={"name_kana": "ヤマダ ハナコ", "birth_date": "1938-04-02"})
        assert found.status_code == 200 and found.json(), found.text
        body = {"reason_code": "emergency_transport", "reason": "心肺停止で搬送", "password": PASSWORD, "otp": otp,
                "confirm": True}
        r = self.client.post(f"/api/v1/patients/{self.patient_id}/break-glass", headers=headers, json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def exclude_care_office(self) -> None:
        grant_consent(self.db, self.keyring, self.patient_id, self.world.physician,
                      organisation_ids=[self.care_office.id])

    def withdraw(self) -> None:
        r = self.client.post(f"/api/v1/patients/{self.patient_id}/consents/{self.consent_id}/withdraw",
                             headers=self.headers(self.world.physician),
                             json={"reason": "本人の申し出", "password": PASSWORD})
        assert r.status_code == 200, r.text

    def expire_consent(self) -> None:
        record_lapsed_consent(self.db, self.keyring, self.patient_id, self.world.physician)

    def end_care_manager_membership(self) -> None:
        patient_service.end_member(self.db, actor=actor_of(self.world.physician), patient_id=self.patient_id,
                                   membership_id=self._cache["care_manager_membership"], data=MembershipEnd())

    def disable(self, user: User) -> None:
        user.active, user.disabled_at = False, utcnow()
        self.db.flush()

    def expire_grants(self, user: User) -> None:
        for grant in self.db.scalars(select(BreakGlassGrant).where(BreakGlassGrant.user_id == user.id)):
            grant.granted_at = utcnow() - timedelta(hours=3)
            grant.expires_at = utcnow() - timedelta(hours=1)
        self.db.flush()


def _disabled(ctx: Ctx) -> dict[str, str]:
    headers = ctx.headers(ctx.care_manager)
    ctx.disable(ctx.care_manager)
    return headers


def _break_glass_holder(ctx: Ctx) -> dict[str, str]:
    ctx.grant_id  # noqa: B018 - creates the grant
    return ctx.headers(ctx.er_physician)


def _break_glass_expired(ctx: Ctx) -> dict[str, str]:
    ctx.grant_id  # noqa: B018
    ctx.expire_grants(ctx.er_physician)
    return ctx.headers(ctx.er_physician)


def _then(arrange: Callable[[Ctx], None], who: Callable[[Ctx], User]) -> Callable[[Ctx], dict[str, str]]:
    def scenario(ctx: Ctx) -> dict[str, str]:
        arrange(ctx)
        return ctx.headers(who(ctx))
    return scenario


def _nothing(ctx: Ctx) -> None:
    return None


def _care_manager(ctx: Ctx) -> User:
    return ctx.care_manager


# Each scenario arranges the world and returns the acting user's headers. The acting team member
# (a care manager, not the registrar) is allowed on every patient-scoped route in the first one.
SCENARIOS: dict[str, Callable[[Ctx], dict[str, str]]] = {
    "member_with_consent": _then(_nothing, _care_manager),
    "non_member": _then(_nothing, lambda ctx: ctx.world.outsider),
    "excluded_organisation": _then(Ctx.exclude_care_office, _care_manager),
    "after_withdrawal": _then(Ctx.withdraw, _care_manager),
    "expired_consent": _then(Ctx.expire_consent, _care_manager),
    "ended_membership": _then(Ctx.end_care_manager_membership, _care_manager),
    "disabled_user": _disabled,
    "break_glass_holder": _break_glass_holder,
    "break_glass_expired": _break_glass_expired,
    "registrar_without_consent": _then(Ctx.withdraw, lambda ctx: ctx.world.physician),
}
