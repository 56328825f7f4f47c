"""The fictional みどり市 demo region: organisations, professionals of every profession, 20 patients with
teams, consents and six weeks of entries of every sheet kind (the stories are in demo_entries)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from renkei import demo_entries
from renkei.audit import service as audit
from renkei.auth import enrolment
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.consent import service as consent_service
from renkei.consent.schemas import ConsentCreate, WithdrawIn
from renkei.crypto.keyring import Keyring
from renkei.db.types import today_jst
from renkei.directory import service as directory_service
from renkei.directory.models import Organisation, User
from renkei.notify import service as notify_service
from renkei.patients import service as patient_service
from renkei.patients.models import CareTeamMembership, Patient
from renkei.patients.schemas import CareLevel, PatientCreate, Sex
from renkei.sheets import service as sheets

DEMO_DOMAIN = "midori.example"
DEFAULT_DEMO_PASSWORD = "renkei-demo-2026"
DEMO_ENROLMENT_CODE = "2026-1122"
DEMO_ENROLMENT_CODE_LIFETIME = timedelta(days=365)

# key, name, kind, phone
ORGANISATIONS = [
    ("clinic", "みどり在宅クリニック", "home_care_clinic", "0120-000-101"),
    ("hospital", "みどり総合病院", "hospital", "0120-000-102"),
    ("nursing", "みどり訪問看護ステーション", "visiting_nurse_station", "0120-000-103"),
    ("pharmacy", "みどり薬局", "pharmacy", "0120-000-104"),
    ("kyotaku", "みどり居宅介護支援事業所", "care_management_office", "0120-000-105"),
    ("higashi", "ひがし居宅介護支援事業所", "care_management_office", "0120-000-106"),
    ("houkatsu", "みどり地域包括支援センター", "community_support_centre", "0120-000-107"),
    ("dental", "みどり歯科医院", "dental_clinic", "0120-000-108"),
    ("city", "みどり市役所 在宅医療・介護連携推進課", "municipality", "0120-000-109"),
]

# email local part, name, kana, profession, org key, role
USERS = [
    ("admin.clinic", "緑川 一郎", "ミドリカワ イチロウ", "physician", "clinic", "org_admin"),
    ("dr.sato", "佐藤 健一", "サトウ ケンイチ", "physician", "clinic", "member"),
    ("dr.tanaka", "田中 美和", "タナカ ミワ", "physician", "clinic", "member"),
    ("admin.hospital", "高橋 恵子", "タカハシ ケイコ", "nurse", "hospital", "org_admin"),
    ("msw.suzuki", "鈴木 真理", "スズキ マリ", "msw", "hospital", "member"),
    ("ns.ito", "伊藤 由美", "イトウ ユミ", "nurse", "hospital", "member"),
    ("dr.er", "渡辺 大輔", "ワタナベ ダイスケ", "physician", "hospital", "member"),
    ("admin.nursing", "山本 和子", "ヤマモト カズコ", "nurse", "nursing", "org_admin"),
    ("ns.nakamura", "中村 さくら", "ナカムラ サクラ", "nurse", "nursing", "member"),
    ("ns.kobayashi", "小林 愛", "コバヤシ アイ", "nurse", "nursing", "member"),
    ("pt.kato", "加藤 翔", "カトウ ショウ", "therapist", "nursing", "member"),
    ("admin.pharmacy", "吉田 浩", "ヨシダ ヒロシ", "pharmacist", "pharmacy", "org_admin"),
    ("ph.yamada", "山田 花子", "ヤマダ ハナコ", "pharmacist", "pharmacy", "member"),
    ("admin.kyotaku", "佐々木 隆", "ササキ タカシ", "care_manager", "kyotaku", "org_admin"),
    ("cm.yamaguchi", "山口 直美", "ヤマグチ ナオミ", "care_manager", "kyotaku", "member"),
    ("cw.matsumoto", "松本 陽子", "マツモト ヨウコ", "care_worker", "kyotaku", "member"),
    ("admin.higashi", "井上 誠", "イノウエ マコト", "care_manager", "higashi", "org_admin"),
    ("cm.kimura", "木村 優子", "キムラ ユウコ", "care_manager", "higashi", "member"),
    ("admin.houkatsu", "林 明美", "ハヤシ アケミ", "care_manager", "houkatsu", "org_admin"),
    ("diet.shimizu", "清水 里美", "シミズ サトミ", "dietitian", "houkatsu", "member"),
    ("admin.dental", "斎藤 修", "サイトウ オサム", "dentist", "dental", "org_admin"),
    ("dds.yamazaki", "山崎 亮", "ヤマザキ リョウ", "dentist", "dental", "member"),
    ("coord.mori", "森 久美子", "モリ クミコ", "coordinator", "city", "member"),
    ("region.admin", "池田 聡", "イケダ サトシ", "coordinator", "city", "region_admin"),
]

FAMILY = [("青木", "アオキ"), ("石井", "イシイ"), ("上田", "ウエダ"), ("遠藤", "エンドウ"),
          ("大野", "オオノ"), ("岡田", "オカダ"), ("金子", "カネコ"), ("菊地", "キクチ"),
          ("工藤", "クドウ"), ("近藤", "コンドウ"), ("坂本", "サカモト"), ("柴田", "シバタ"),
          ("杉山", "スギヤマ"), ("関口", "セキグチ"), ("高木", "タカギ"), ("千葉", "チバ"),
          ("土屋", "ツチヤ"), ("中島", "ナカジマ"), ("西村", "ニシムラ"), ("野口", "ノグチ")]
GIVEN_F = [("トメ", "トメ"), ("ハル", "ハル"), ("キヨ", "キヨ"), ("文子", "フミコ"), ("幸子", "サチコ"),
           ("節子", "セツコ"), ("和枝", "カズエ"), ("澄子", "スミコ"), ("静江", "シズエ"), ("千代", "チヨ")]
GIVEN_M = [("茂", "シゲル"), ("清", "キヨシ"), ("勇", "イサム"), ("正男", "マサオ"), ("弘", "ヒロシ"),
           ("武", "タケシ"), ("勝", "マサル"), ("昭", "アキラ"), ("進", "ススム"), ("稔", "ミノル")]
CARE_LEVELS = [CareLevel.support_2, CareLevel.care_1, CareLevel.care_2, CareLevel.care_3, CareLevel.care_4,
               CareLevel.care_5]


@dataclass
class DemoRoster:
    organisations: list[dict] = field(default_factory=list)
    users: list[dict] = field(default_factory=list)
    patients: list[dict] = field(default_factory=list)


class DemoAlreadyLoaded(RuntimeError):
    """The demo region is already in this database."""


def is_loaded(session: Session) -> bool:
    demo_users = select(func.count()).select_from(User).where(User.email.like(f"%@{DEMO_DOMAIN}"))
    return bool(session.scalar(demo_users))


def _actor(user: User) -> Actor:
    return Actor(user_id=user.id, organisation_id=user.organisation_id, profession=user.profession,
                 role=user.role, name=user.name, session_id=uuid.uuid4(), session_kind="cli")


# Consent stories of the demo: patient 1's consent excludes the second care-management office (its
# care manager cm.kimura is on that team); patient 7 has withdrawn consent.
EXCLUDES_HIGASHI = 1
WITHDRAWN = 7

# Team role -> the role an author writes for in the entry stories (demo_entries).
ENTRY_ROLES = {"attending_physician": "physician", "visiting_nurse": "nurse", "therapist": "therapist",
               "pharmacist": "pharmacist", "discharge_coordinator": "msw", "care_worker": "care_worker"}


def _consent(session: Session, settings: Settings, keyring: Keyring, cm: User, patient_id: uuid.UUID, *,
             password: str, on: date, excluded_orgs: list[uuid.UUID]) -> uuid.UUID:
    data = ConsentCreate(given_by="patient", method="written", scope="blanket",
                         organisation_ids=excluded_orgs, obtained_on=on, password=password)
    return consent_service.record(session, settings=settings, keyring=keyring, actor=_actor(cm),
                                  patient_id=patient_id, data=data).id


def _withdraw(session: Session, settings: Settings, keyring: Keyring, cm: User, patient_id: uuid.UUID,
              consent_id: uuid.UUID, *, password: str) -> None:
    consent_service.withdraw(session, settings=settings, keyring=keyring, actor=_actor(cm),
                             patient_id=patient_id, consent_id=consent_id,
                             data=WithdrawIn(reason="本人の申し出により撤回", password=password))


def load(session: Session, *, keyring: Keyring, password: str, seed: int = 20261122,
         settings: Settings | None = None) -> DemoRoster:
    """Create the region; refuses to run twice (the emails are unique)."""
    settings = settings or Settings()
    if is_loaded(session):
        raise DemoAlreadyLoaded("the demo region is already loaded in this database")
    rng = random.Random(seed)
    registry = sheets.registry_for(settings.schemas_dir)
    actors: dict[uuid.UUID, Actor] = {}

    def actor_of(user: User) -> Actor:  # one CLI session per author, as one person signed in once
        return actors.setdefault(user.id, _actor(user))

    orgs: dict[str, Organisation] = {}
    for key, name, kind, phone in ORGANISATIONS:
        org = Organisation(name=name, kind=kind, phone=phone)
        session.add(org)
        orgs[key] = org
    session.flush()
    users: dict[str, User] = {}
    for local, name, kana, profession, org_key, role in USERS:
        users[local] = directory_service.create_user(
            session, org_id=orgs[org_key].id, email=f"{local}@{DEMO_DOMAIN}", name=name, name_kana=kana,
            profession=profession, role=role, password=password,
        )
        # Where two-factor sign-in is required, enrolling takes a code an administrator hands over; the demo
        # region documents one for every account instead.
        enrolment.issue_enrolment_code(session, keyring=keyring, user=users[local], code=DEMO_ENROLMENT_CODE,
                                       lifetime=DEMO_ENROLMENT_CODE_LIFETIME)
    today = today_jst()
    for i in range(20):
        fam, fam_kana = FAMILY[i]
        female = i % 3 != 2
        given, given_kana = (GIVEN_F if female else GIVEN_M)[i % 10]
        birth = date(1926 + rng.randrange(0, 30), rng.randrange(1, 13), rng.randrange(1, 29))
        level = CARE_LEVELS[rng.randrange(len(CARE_LEVELS))]
        cm = users["cm.kimura"] if i in (3, 11, 17) else users["cm.yamaguchi"]
        data = PatientCreate(
            name=f"{fam} {given}", name_kana=f"{fam_kana} {given_kana}", birth_date=birth,
            sex=Sex.female if female else Sex.male,
            address=f"みどり市中央{i + 1}丁目{rng.randrange(1, 30)}番地",
            phone=f"0120-{100 + i:03d}-{rng.randrange(1000, 9999)}",
            care_insurance_number=f"{1000000000 + i * 7919:010d}",
            health_insurance_number=f"39{i:02d}{rng.randrange(100000, 999999)}",
            care_level=level, care_level_valid_from=today - timedelta(days=200),
            care_level_valid_until=today + timedelta(days=165), team_role="care_manager",
        )
        view = patient_service.register(session, keyring=keyring, actor=_actor(cm), data=data)
        start = today - timedelta(days=42)
        team = [("dr.sato" if i % 2 == 0 else "dr.tanaka", "attending_physician"),
                ("ns.nakamura" if i % 2 == 0 else "ns.kobayashi", "visiting_nurse"),
                ("ph.yamada", "pharmacist")]
        if i % 4 == 0:
            team.append(("pt.kato", "therapist"))
        if i % 5 == 0:
            team.append(("msw.suzuki", "discharge_coordinator"))
        if i % 6 == 0:
            team.append(("cw.matsumoto", "care_worker"))
        if i == 1:
            # A second care-management office on the team: the consent of this patient excludes it.
            team.append(("cm.kimura", "care_manager"))
        for local, role in team:
            u = users[local]
            session.add(CareTeamMembership(patient_id=view.id, user_id=u.id,
                                           organisation_id=u.organisation_id, team_role=role,
                                           start_date=start, added_by=cm.id))
        session.flush()
        consent_id = _consent(session, settings, keyring, cm, view.id, password=password, on=start,
                              excluded_orgs=[orgs["higashi"].id] if i == EXCLUDES_HIGASHI else [])
        # Team members write for their role; the care manager is the patient's own (on patient 1's team the
        # second office's care manager is one the consent leaves out, so she writes nothing there).
        members = {ENTRY_ROLES.get(role, role): users[local] for local, role in team if local != "cm.kimura"}
        members["care_manager"] = cm
        demo_entries.write(demo_entries.Story(
            session=session, keyring=keyring, registry=registry, settings=settings, today=today,
            rng=random.Random(f"{seed}-entries-{i}"),  # the patients stay as they were without entries
            index=i, patient_id=view.id, family_name=fam, members=members, actor_of=actor_of,
            care_manager_office="higashi" if cm is users["cm.kimura"] else "kyotaku"))
        if i == WITHDRAWN:
            # The entries were written while the consent stood; its withdrawal now closes the record.
            _withdraw(session, settings, keyring, cm, view.id, consent_id, password=password)
    session.flush()
    # The demo commits outside a request, so the events and audit rows its services queued are written here
    # (events first, as the app's pre-commit hooks do).
    notify_service.append_queued(session)
    audit.write_pending(session, keyring)
    return roster(session, keyring=keyring)


def roster(session: Session, *, keyring: Keyring) -> DemoRoster:
    """What is loaded: organisations, demo accounts and patients with their teams (from the database)."""
    out = DemoRoster()
    org_names = {}
    for org in session.scalars(select(Organisation).order_by(Organisation.name)):
        org_names[org.id] = org.name
        out.organisations.append({"id": str(org.id), "name": org.name, "kind": org.kind})
    demo_users = list(session.scalars(select(User).where(User.email.like(f"%@{DEMO_DOMAIN}"))))
    order = {f"{u[0]}@{DEMO_DOMAIN}": n for n, u in enumerate(USERS)}
    demo_users.sort(key=lambda u: order.get(u.email, 999))
    emails = {u.id: u.email for u in demo_users}
    for u in demo_users:
        out.users.append({"id": str(u.id), "email": u.email, "name": u.name, "profession": u.profession,
                          "organisation": org_names.get(u.organisation_id, ""), "role": u.role})
    from_demo = select(Patient).where(Patient.created_by.in_(list(emails)))
    for p in session.scalars(from_demo):
        ident = patient_service.decrypt_identity(session, keyring, p)
        team = session.scalars(select(CareTeamMembership).where(CareTeamMembership.patient_id == p.id,
                                                               CareTeamMembership.ended_at.is_(None)))
        out.patients.append({"id": str(p.id), "name": ident.name, "name_kana": ident.name_kana,
                             "birth_date": ident.birth_date.isoformat(),
                             "team": [{"email": emails.get(m.user_id, ""), "team_role": m.team_role}
                                      for m in team]})
    out.patients.sort(key=lambda p: p["name_kana"])
    return out
