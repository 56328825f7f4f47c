"""Factories: build organisations, users and patients through the real services."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.auth import passwords
from renkei.auth import service as auth_service
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.consent import service as consent_service
from renkei.consent.models import Consent, ConsentOrganisation
from renkei.consent.schemas import ConsentCreate
from renkei.crypto.keyring import Keyring
from renkei.db.types import today_jst
from renkei.directory.models import Organisation, User
from renkei.patients import service as patient_service
from renkei.patients.schemas import PatientCreate

PASSWORD = "correct-horse-battery-staple-2026"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@lru_cache(maxsize=1)
def password_hash() -> str:
    # Hash once per run: argon2 is deliberately slow, and most tests do not exercise it.
    return passwords.hash_password(PASSWORD)


def make_org(db: Session, name: str = "テスト診療所", kind: str = "clinic") -> Organisation:
    org = Organisation(name=name, kind=kind)
    db.add(org)
    db.flush()
    return org


def make_user(
    db: Session, org: Organisation, *, profession: str = "physician", role: str = "member", email: str | None = None,
    name: str = "試験 太郎", keyring: Keyring | None = None,
) -> User:
    user = User(organisation_id=org.id, email=email or f"u-{uuid.uuid4().hex[:10]}@test.example", name=name,
                profession=profession, role=role, password_hash=password_hash())
    db.add(user)
    db.flush()
    if role in ("org_admin", "region_admin") and keyring is not None:
        enrol_totp(db, keyring, user)
    return user


def enrol_totp(db: Session, keyring: Keyring, user: User, secret: str = TOTP_SECRET) -> None:
    user.totp_secret = keyring.seal_secret(aad="user_account.totp_secret", binding=str(user.id),
                                           payload=secret.encode())
    user.totp_enabled = True
    user.totp_last_step = None
    db.flush()


def next_totp(db: Session, user: User, secret: str = TOTP_SECRET) -> str:
    """A code the server will accept now: the current step, or the next one if the current was used.

    Never the previous step: that code would stop being accepted if a 30 s boundary passed between making
    it and the server checking it.
    """
    db.refresh(user)
    current = int(time.time() // 30)
    step = current if user.totp_last_step is None else max(current, user.totp_last_step + 1)
    if step > current + 1:
        time.sleep(30 - time.time() % 30 + 0.1)
        return next_totp(db, user, secret)
    return pyotp.TOTP(secret).at(step * 30)


def actor_of(user: User, session_id: uuid.UUID | None = None) -> Actor:
    return Actor(user_id=user.id, organisation_id=user.organisation_id, profession=user.profession, role=user.role,
                 name=user.name, session_id=session_id or uuid.uuid4(), session_kind="api")


def auth_headers(db: Session, settings: Settings, keyring: Keyring, user: User) -> dict[str, str]:
    """Bearer headers for a fresh API session of `user`, without going through the login endpoint."""
    auth, refresh = auth_service.start_session(db, settings=settings, user=user, kind="api")
    issued = auth_service.issue_tokens(settings, keyring, auth, refresh)
    return {"Authorization": f"Bearer {issued.access_token}"}


def patient_data(**overrides: object) -> dict:
    data = {
        "name": "山田 花子", "name_kana": "ヤマダ ハナコ", "birth_date": "1938-04-02", "sex": "female",
        "address": "みどり市中央1-2-3", "phone": "0120-000-000", "care_insurance_number": "0000123456",
        "health_insurance_number": "39123456", "care_level": "care_2", "team_role": "attending_physician",
    }
    data.update(overrides)
    return data


def make_patient(db: Session, keyring: Keyring, registrar: User, **overrides: object) -> uuid.UUID:
    view = patient_service.register(db, keyring=keyring, actor=actor_of(registrar),
                                    data=PatientCreate.model_validate(patient_data(**overrides)))
    return view.id


def grant_consent(
    db: Session, keyring: Keyring, patient_id: uuid.UUID, recorder: User, *, scope: str = "blanket",
    organisation_ids: Sequence[uuid.UUID] = (), excluded_categories: Sequence[str] = (),
    given_by: str = "patient", method: str = "written", obtained_on: date | None = None,
    valid_until: date | None = None,
    settings: Settings | None = None, **extra: object,
) -> uuid.UUID:
    """Record a consent through the consent service (re-authenticating `recorder` with PASSWORD).

    The default is a blanket consent (一括同意) for every organisation on the team and every category.
    """
    data = ConsentCreate.model_validate({
        "given_by": given_by, "method": method, "scope": scope, "organisation_ids": list(organisation_ids),
        "excluded_categories": list(excluded_categories), "obtained_on": obtained_on or today_jst(),
        "valid_until": valid_until, "password": PASSWORD, **extra,
    })
    out = consent_service.record(db, settings=settings or _consent_settings(), keyring=keyring,
                                 actor=actor_of(recorder), patient_id=patient_id, data=data)
    return out.id


def exclude_categories(db: Session, keyring: Keyring, patient_id: uuid.UUID, *categories: str) -> uuid.UUID:
    """A new consent version like the current one but excluding `categories` (consents are never edited),
    recorded by whoever recorded the current one."""
    current = db.scalars(select(Consent).where(Consent.patient_id == patient_id,
                                               Consent.superseded_at.is_(None))).one()
    organisation_ids = db.scalars(select(ConsentOrganisation.organisation_id).where(
        ConsentOrganisation.consent_id == current.id)).all()
    return grant_consent(db, keyring, patient_id, db.get(User, current.recorded_by), scope=current.scope,
                         organisation_ids=organisation_ids, excluded_categories=categories)


@lru_cache(maxsize=1)
def _consent_settings() -> Settings:
    return Settings(environment="test")


@dataclass
class World:
    clinic: Organisation
    nursing: Organisation
    other_office: Organisation
    physician: User
    nurse: User
    outsider: User
    clinic_admin: User
    nursing_admin: User
    patient_id: uuid.UUID
    consent_id: uuid.UUID | None = None  # the active blanket consent of `patient_id`


def build_world(db: Session, keyring: Keyring) -> World:
    clinic = make_org(db, "テスト在宅クリニック", "home_care_clinic")
    nursing = make_org(db, "テスト訪問看護ステーション", "visiting_nurse_station")
    other = make_org(db, "よその居宅介護支援事業所", "care_management_office")
    physician = make_user(db, clinic, profession="physician", name="医師 一郎")
    nurse = make_user(db, nursing, profession="nurse", name="看護 花子")
    outsider = make_user(db, other, profession="care_manager", name="外部 次郎")
    clinic_admin = make_user(db, clinic, profession="physician", role="org_admin", keyring=keyring)
    nursing_admin = make_user(db, nursing, profession="nurse", role="org_admin", keyring=keyring)
    patient_id = make_patient(db, keyring, physician)
    patient_service.add_member(
        db, actor=actor_of(physician), patient_id=patient_id,
        data=patient_service.MembershipIn(user_id=nurse.id, team_role="visiting_nurse", start_date=today_jst()),
    )
    consent_id = grant_consent(db, keyring, patient_id, physician)
    return World(clinic, nursing, other, physician, nurse, outsider, clinic_admin, nursing_admin, patient_id,
                 consent_id)
