"""Six weeks of timeline entries for each demo patient, posted through the timeline service.

Every entry goes through `timeline.service` exactly as an API post does: the access decision (who may write
which sheet, the consent), schema validation, encryption at rest, audit and outbox events. The service stamps
the posting time; the demo then moves each entry's posting time back to its story's day (the audit log and
the outbox keep the real load time). The clinical dates also live in the payloads (visit dates, record
dates, 「M/D訪問」 in the notes), spread over the weeks since the team started; entries are posted oldest
story first, so the timeline reads in clinical order.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.types import JST
from renkei.directory.models import User
from renkei.sheets.registry import SheetRegistry
from renkei.timeline import service as timeline
from renkei.timeline.models import Priority, TimelineEntry
from renkei.timeline.schemas import EntryCreate, RecipientIn

CLINIC = ("みどり在宅クリニック", "0120-000-101")
NURSING = ("みどり訪問看護ステーション", "0120-000-103")
CM_OFFICES = {"kyotaku": ("みどり居宅介護支援事業所", "0120-000-105"),
              "higashi": ("ひがし居宅介護支援事業所", "0120-000-106")}


@dataclass(frozen=True)
class Profile:
    """A clinical picture: what the sheets of a patient with it say."""

    diseases: tuple[tuple[str, str], ...]
    medications: tuple[tuple[str, str, str], ...]
    baseline: tuple[str, str, str]  # ADL, cognition, communication
    wish: str  # resuscitation wish: dnar | full_treatment | not_confirmed
    course: str
    findings: tuple[str, ...]
    cautions: str
    nurse_notes: tuple[str, ...]
    bp: int
    spo2: int = 96
    ulcer: bool = False


PROFILES = (
    Profile((("慢性心不全", "2019-04-01"), ("高血圧症", "2008-06-01")),
            (("フロセミド錠 20mg", "1回1錠", "1日1回 朝食後"),
             ("カルベジロール錠 2.5mg", "1回1錠", "1日2回 朝夕食後")),
            ("屋内は伝い歩き、入浴は一部介助。", "年相応の物忘れ程度。", "会話は問題なし。"),
            "dnar", "心不全の増悪を繰り返しており、次回増悪時は自宅で緩和的に対応する方針。",
            ("下腿浮腫は軽度、肺雑音なし。", "体重は横ばい。息切れの訴えなし。",
             "両下腿に軽度の圧痕性浮腫。"),
            "体重が2日で1kg以上増えたら連絡をお願いします。水分は1日1,200mlまで。",
            ("体重測定、下腿浮腫の確認。塩分の多い漬物を控えるよう再度説明。", "入浴介助。息切れなく終了。",
             "起座呼吸なし。夜間の咳も減っていると本人。"), 132),
    Profile((("肺がん（多発骨転移）", "2024-11-15"), ("2型糖尿病", "2012-03-01")),
            (("オキシコドン徐放錠 10mg", "1回1錠", "1日2回 8時・20時"),
             ("オキシコドン散 2.5mg", "1回1包", "疼痛時（1時間あけて）"),
             ("酸化マグネシウム錠 330mg", "1回1錠", "1日3回")),
            ("ベッド上生活、車いす移乗は一部介助。", "清明。", "会話可能、疲れやすい。"),
            "dnar",
            "肺がん終末期。呼吸状態が徐々に悪化し、自宅で看取る方針。心肺停止時は救急要請せず主治医へ連絡。",
            ("疼痛はNRS 2〜3で自制内。呼吸音は右下肺野で減弱。", "食事量低下。傾眠傾向が出てきた。",
             "レスキューの使用は1日1〜2回。"),
            "レスキュー使用が1日3回を超えたらご連絡ください。ご家族へ看取りのパンフレットを渡しています。",
            ("レスキュー使用2回。疼痛の部位は右背部。", "口腔ケア実施。口渇の訴えあり、氷片で対応。",
             "ご家族の不安が強く、今後の経過について時間をとって説明した。"), 108, 93),
    Profile((("アルツハイマー型認知症", "2020-09-01"), ("高血圧症", "2005-01-01")),
            (("ドネペジル錠 5mg", "1回1錠", "1日1回 朝食後"),
             ("アムロジピン錠 5mg", "1回1錠", "1日1回 朝食後")),
            ("屋内歩行は自立、外出は見守り。", "日付はあいまい、家族の顔は分かる。", "簡単な会話は可能。"),
            "not_confirmed", "認知症は緩徐に進行。身体状態は安定している。",
            ("血圧安定。内服は家族管理で確実。", "夕方の落ち着きのなさあり、家族が対応に困っている。",
             "体重減少なし。"),
            "夕方以降の不穏時は無理に制止せず、そばで見守ってください。",
            ("お薬カレンダーの残薬を確認。飲み忘れ1回。", "デイサービスを楽しみにしている様子。",
             "夜間2回トイレに起きると長女より。"), 138),
    Profile((("脳梗塞後遺症（左片麻痺）", "2021-02-10"), ("嚥下障害", "2021-03-01")),
            (("クロピドグレル錠 75mg", "1回1錠", "1日1回 朝"),
             ("ランソプラゾールOD錠 15mg", "1回1錠", "1日1回 朝")),
            ("胃ろうから栄養、車いすへの移乗は全介助。", "指示理解は良好。",
             "構音障害あり、ゆっくり聞き取る。"),
            "full_treatment", "再梗塞と誤嚥性肺炎のリスクあり。状態変化時は救急搬送を希望。",
            ("胃ろう周囲の発赤なし。肺音清。", "痰がやや多い。吸引の手技をご家族と確認。",
             "麻痺側の拘縮なし。"),
            "注入時は30度以上ギャッジアップ。37.5℃以上の発熱時はご連絡ください。",
            ("胃ろう部の洗浄と観察。漏れなし。", "体位変換2時間ごと、仙骨部の除圧を継続。",
             "口腔ケア後に吸引少量。"), 126, 95, True),
    Profile((("慢性閉塞性肺疾患（在宅酸素療法）", "2016-07-01"),),
            (("チオトロピウム吸入", "1回2吸入", "1日1回"), ("カルボシステイン錠 500mg", "1回1錠", "1日3回")),
            ("在宅酸素2L/分。屋内は伝い歩き。", "清明。", "長く話すと息切れ。"),
            "dnar", "呼吸不全は緩徐に進行。増悪時も挿管は希望しない。",
            ("SpO2 92%（酸素2L）。喘鳴なし。", "労作時の息切れが増えてきた。", "痰の性状は白色。"),
            "SpO2が88%を下回る、または痰が黄色に変わったらご連絡ください。",
            ("酸素チューブの取り扱いを確認。火気の注意を再説明。", "口すぼめ呼吸を一緒に練習。",
             "入浴は酸素を装着したまま短時間で。"), 124, 92),
    Profile((("パーキンソン病", "2015-05-01"), ("骨粗鬆症", "2018-01-01")),
            (("レボドパ・カルビドパ配合錠", "1回1錠", "1日3回 毎食後"),
             ("エルデカルシトールカプセル", "1回1カプセル", "1日1回")),
            ("すくみ足あり、歩行器で見守り。", "清明。", "声が小さい。"),
            "full_treatment", "薬の効果が切れる時間帯の転倒に注意。",
            ("オフ時間が夕方に出ている。", "転倒なし。すくみ足は前回と同程度。", "便秘傾向。"),
            "夕方のオフ時の転倒に注意してください。",
            ("歩行器での室内歩行を見守り。方向転換でふらつき。", "排便4日なし、腹部マッサージ実施。",
             "服薬時間を守れている。"), 118),
    Profile((("2型糖尿病（インスリン療法）", "2010-10-01"), ("慢性腎臓病", "2019-12-01")),
            (("インスリン グラルギン", "8単位", "1日1回 朝"),
             ("リナグリプチン錠 5mg", "1回1錠", "1日1回 朝")),
            ("屋内歩行は自立、入浴は見守り。", "清明。", "会話は問題なし。"),
            "not_confirmed", "血糖は安定。低血糖に注意。",
            ("空腹時血糖 120台で安定。", "足趾に傷なし。", "HbA1c 7.2%。"),
            "食事量が半分以下の日はインスリンを減量する指示です（6単位）。",
            ("インスリン手技の確認、問題なし。", "足の観察と保湿。", "低血糖症状なし。"), 140),
    Profile((("左大腿骨頸部骨折（術後）", "2025-01-20"), ("骨粗鬆症", "2018-01-01")),
            (("アレンドロン酸錠 35mg", "1回1錠", "週1回 起床時"),
             ("アセトアミノフェン錠 200mg", "1回2錠", "疼痛時")),
            ("歩行器歩行は見守り。", "軽度の物忘れ。", "難聴あり、右耳から大きめの声で。"),
            "dnar", "骨折術後のリハビリ中。転倒による再骨折に注意。",
            ("創部問題なし。歩行は安定してきた。", "股関節痛は軽減。", "転倒なし。"),
            "股関節の過屈曲・内旋を避けてください（低い椅子、横座り禁止）。",
            ("歩行器での歩行練習を見守り。", "入浴介助。創部の状態良好。",
             "夜間のポータブルトイレ使用を確認。"),
            130),
)

ALLERGIES = ((), (("ペニシリン系抗菌薬", "全身の発疹"),), (), (("造影剤", "じんましん"),),
             (("そば", "じんましん"),))
BLOOD = ("A", "O", "B", "AB", "A", "O", "unknown")
RELATIONS = (("長男", "浩"), ("長女", "恵子"), ("次男", "修"), ("妻", "和子"), ("夫", "正"), ("次女", "明美"))
MESSAGES = (
    ("care_manager", ("来週から通所介護を週2回（月・木）に増やします。"
                     "訪問の曜日が重なる場合はご連絡ください。")),
    ("care_manager", "ご家族より、{d}の訪問を午後に変更してほしいとのご希望です。調整をお願いします。"),
    ("nurse", "ご家族から夜間の痰が増えたと相談がありました。次回の訪問診療でご確認をお願いします。"),
    ("pharmacist", "{d}より一包化に変更しました。お薬カレンダーも新しくしています。"),
    ("physician", "検査結果をお伝えしました。腎機能は前回と変わりありません。"),
    ("nurse", "福祉用具（介護ベッドのマットレス）の変更をご検討ください。体圧分散が不十分です。"),
    ("care_manager", "区分変更申請を{d}に提出しました。認定調査の日程が決まり次第お知らせします。"),
)


@dataclass
class Story:
    """What the entries of one patient need to know about the region and the patient."""

    session: Session
    keyring: Keyring
    registry: SheetRegistry
    settings: Settings
    today: date
    rng: random.Random
    index: int
    patient_id: uuid.UUID
    family_name: str
    members: dict[str, User]  # team role -> member who writes for it
    care_manager_office: str
    actor_of: Callable[[User], Actor]
    posted: int = 0
    days_ago: int = 0  # the story's day of what is being posted now
    ids: dict[str, Any] = field(default_factory=dict)  # the current ACP's id and date

    def day(self, days_ago: int) -> str:
        return (self.today - timedelta(days=days_ago)).isoformat()

    def md(self, days_ago: int) -> str:
        d = self.today - timedelta(days=days_ago)
        return f"{d.month}/{d.day}"

    def post(self, role: str, sheet: str, data: dict[str, Any], *, urgent: bool = False,
             to: list[RecipientIn] | None = None) -> uuid.UUID:
        body = EntryCreate(sheet=sheet, version=1, data=data, recipients=to or [],
                           priority=Priority.urgent if urgent else Priority.normal)
        out = timeline.create_entry(self.session, keyring=self.keyring, registry=self.registry,
                                    settings=self.settings, actor=self.actor_of(self.members[role]),
                                    patient_id=self.patient_id, body=body)
        self._backdate(out.id)
        self.posted += 1
        return out.id

    def _backdate(self, entry_id: uuid.UUID) -> None:
        """Show the entry at its story's day, in working hours (JST), not at the moment the demo loads.

        Only the demo does this, to a fiction: the audit log and the outbox keep the real load time."""
        if self.days_ago <= 0:
            return
        entry = self.session.get(TimelineEntry, entry_id)
        assert entry is not None and entry.posted_at is not None
        hour, minute = 9 + (self.posted * 5 + self.index) % 9, (self.posted * 17 + self.index * 7) % 60
        day = self.today - timedelta(days=self.days_ago)
        when = datetime(day.year, day.month, day.day, hour, minute, tzinfo=JST).astimezone(UTC)
        entry.created_at = entry.updated_at = entry.posted_at = entry.record_posted_at = when
        self.session.flush()

    def acknowledge(self, role: str, entry_id: uuid.UUID) -> None:
        timeline.acknowledge(self.session, keyring=self.keyring, settings=self.settings,
                             actor=self.actor_of(self.members[role]), entry_id=entry_id)


def write(story: Story) -> int:
    """Post the patient's six weeks, oldest first; returns how many entries were posted."""
    i, profile = story.index, PROFILES[story.index % len(PROFILES)]
    relation, given = RELATIONS[i % len(RELATIONS)]
    key_person = {"name": f"{story.family_name} {given}", "relationship": relation,
                  "phone": f"090-5555-{1000 + i * 37:04d}", "note": "日中は携帯へ。"}
    revisited = i % 5 == 3  # a second ACP talk a month on settles what the first left open
    plan: list[tuple[int, Callable[[], None]]] = []

    def at(when: int, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        plan.append((when, lambda: fn(story, *args, **kwargs)))

    if i in (10, 15):
        # A hospital stay just before the team started: its discharge sheet, received by the care manager.
        at(43, _discharge, profile, admitted=58, discharged=41, acknowledged=True)
    if i not in (9, 14, 18):
        at(38, _acp, profile, key_person, days_ago=38, revised=revisited)
        if revisited:
            at(9, _acp, profile, key_person, days_ago=9, revised=False)
            at(8, _emergency, profile, key_person, wish=profile.wish)
    if i not in (9, 18):
        at(37, _emergency, profile, key_person, wish="not_confirmed" if revisited else profile.wish)
    for visit, days_ago in enumerate((40, 26, 12)):
        at(days_ago, _physician_visit, profile, visit, days_ago)
        at(days_ago - 1, _nurse_note, profile, days_ago - 1)
        at(days_ago - 6, _nurse_note, profile, days_ago - 6)
        if days_ago in (40, 12):
            at(days_ago - 3, _pharmacist_note, profile, days_ago - 3)
        if "therapist" in story.members:
            at(days_ago - 2, _therapist_note, days_ago - 2)
        if "care_worker" in story.members and days_ago != 40:
            at(days_ago - 4, _care_worker_note, days_ago - 4)
    at(24, _message, (i + 1) % len(MESSAGES), 24)
    at(3, _message, (i * 3) % len(MESSAGES), 3)
    if i == 2:
        at(0, _fever)
    if i == 12:
        at(1, _fall, profile)
    if i in (5, 10):
        at(0, _admission, profile, key_person, admitted=2 if i == 5 else 0)
    if i == 5:
        # Admitted two days ago; the hospital already sends its plan for the discharge: not yet received.
        at(0, _discharge, profile, admitted=2, discharged=-10, acknowledged=False)
    for when, post in sorted(plan, key=lambda p: -p[0]):  # stable: same-day entries keep their order
        story.days_ago = when
        post()
    return story.posted


# -- the sheets --------------------------------------------------------------------------------------------


def _vitals(story: Story, profile: Profile) -> dict[str, Any]:
    rng = story.rng
    return {"systolic_bp": profile.bp + rng.randrange(-12, 13), "diastolic_bp": 60 + rng.randrange(0, 25),
            "pulse": 62 + rng.randrange(0, 30), "spo2": min(100, profile.spo2 + rng.randrange(-1, 3)),
            "temperature": round(36.0 + rng.randrange(0, 9) / 10, 1), "respiration": 14 + rng.randrange(0, 7)}


def _contacts(story: Story) -> dict[str, Any]:
    cm = story.members["care_manager"]
    office, phone = CM_OFFICES[story.care_manager_office]
    return {"attending_physician": {"clinic": CLINIC[0], "doctor": story.members["physician"].name,
                                    "phone_24h": CLINIC[1]},
            "visiting_nurse": {"station": NURSING[0], "phone": NURSING[1]},
            "care_manager": {"office": office, "name": cm.name, "phone": phone}}


def _acp(story: Story, profile: Profile, key_person: dict, *, days_ago: int, revised: bool) -> None:
    """An ACP discussion; `revised` marks a first talk whose wishes a later one changes."""
    home = profile.wish == "dnar" and not revised
    undecided = profile.wish == "not_confirmed" or revised
    cpr = "undecided" if undecided else "refuse" if profile.wish == "dnar" else "want"
    team = story.members
    data = {
        "record_date": story.day(days_ago),
        "participants": [{"name": "本人", "role": "patient"},
                         {"name": key_person["name"], "role": "family"},
                         {"name": team["physician"].name, "role": "physician"},
                         {"name": team["nurse"].name, "role": "nurse"},
                         {"name": team["care_manager"].name, "role": "care_manager"}],
        "decision_basis": "presumed_by_family" if story.index % 7 == 4 else "stated_by_patient",
        "values": {"what_matters": ["home", "family"] if home else ["family", "comfort"],
                   "what_matters_text": "住み慣れた家で、家族と穏やかに過ごしたい。" if home
                   else "家族に負担をかけすぎないようにしたい。",
                   "understanding_of_illness": profile.course[:80]},
        "substitute_decision_makers": [{**key_person, "priority": 1}],
        "place_of_care": "home",
        "place_of_death": "home" if home else "undecided",
        "treatment_preferences": {
            "cpr": cpr, "ventilation": "refuse" if cpr == "refuse" else cpr,
            "tube_feeding": "undecided", "central_iv": "refuse" if cpr == "refuse" else "undecided",
            "peripheral_iv": "conditional", "peripheral_iv_condition": "脱水で苦しそうなときに短期間だけ。",
            "ambulance": "conditional" if cpr == "refuse" else "want",
            **({"ambulance_condition": "骨折など、苦痛を取るために必要なときのみ。"}
               if cpr == "refuse" else {}),
            "hospitalisation": "undecided" if undecided else "refuse" if cpr == "refuse" else "want",
            "pain_relief": "痛みや息苦しさは我慢せず、しっかり取ってほしい。"},
        "physician_explanation": f"{profile.course}"
        "病状と今後予想される経過、心肺蘇生を行った場合の見込みについて説明した。"
        + ("ご本人・ご家族とも、もう少し考えたいとのこと。1か月後に改めて話し合う。" if revised
           else "気持ちが変わればいつでも話し合えることを伝えた。"),
        "next_review_date": (story.today - timedelta(days=days_ago) + timedelta(days=30 if revised else 90))
        .isoformat(),
    }
    story.ids["acp"] = story.post("physician", "acp", data)
    story.ids["acp_date"] = data["record_date"]


def _emergency(story: Story, profile: Profile, key_person: dict, *, wish: str) -> None:
    rng = story.rng
    resuscitation: dict[str, Any] = {"wish": wish, "anticipated_course": profile.course,
                                     "preferred_hospital": "みどり総合病院（かかりつけ）"}
    if "acp" in story.ids:
        resuscitation.update(acp_date=story.ids["acp_date"], acp_entry_id=str(story.ids["acp"]),
                             confirmed_by=f"{story.members['physician'].name}（主治医）")
    data = {
        "profile": {"blood_type": BLOOD[story.index % len(BLOOD)], "rh": "positive"},
        "baseline": dict(zip(("adl", "cognition", "communication"), profile.baseline, strict=True)),
        "diseases": [{"name": n, "since": s} for n, s in profile.diseases],
        "medications": [{"name": n, "dose": d, "timing": t} for n, d, t in profile.medications],
        "allergies": [{"substance": s, "reaction": r} for s, r in ALLERGIES[story.index % len(ALLERGIES)]],
        "infections": {"status": "none"},
        "contacts": _contacts(story),
        "emergency_contacts": [key_person, {
            "name": f"{story.family_name} {rng.choice(['美穂', '健', '裕子'])}", "relationship": "孫",
            "phone": f"080-5555-{2000 + story.index:04d}"}],
        "resuscitation": resuscitation,
    }
    author = "physician" if story.index % 3 == 0 else "nurse"
    story.post(author, "emergency-info", data)


def _physician_visit(story: Story, profile: Profile, visit: int, days_ago: int) -> None:
    changed = visit == 1 and story.index % 2 == 0
    data: dict[str, Any] = {
        "visit_date": story.day(days_ago), "next_visit_date": story.day(days_ago - 14),
        "treatment_plan": {"changed": changed,
                           **({"summary": "便秘に対し酸化マグネシウムを追加。"} if changed else {})},
        "cautions": profile.cautions, "vitals": _vitals(story, profile),
        "findings": profile.findings[visit % len(profile.findings)],
        "prescriptions": {"changed": changed,
                          **({"details": "酸化マグネシウム錠 330mg 1日2回 朝夕食後 14日分"}
                             if changed else {})},
    }
    if "acp" in story.ids:
        data["end_of_life"] = {"acp_entry_id": str(story.ids["acp"]), "notes": "ACPの内容に変更なし。"}
    story.post("physician", "physician-visit", data)


def _nurse_note(story: Story, profile: Profile, days_ago: int) -> None:
    rng = story.rng
    note = profile.nurse_notes[rng.randrange(len(profile.nurse_notes))]
    data: dict[str, Any] = {
        "vitals": {**_vitals(story, profile), "weight": round(38 + story.index % 9 * 2.5 + rng.random(), 1)},
        "intake": {"meal_ratio": rng.randrange(5, 11), "fluid_ml": rng.randrange(7, 13) * 100},
        "excretion": {"urination_count": rng.randrange(5, 9), "bowel_movement_count": rng.randrange(0, 2),
                      "last_bowel_movement": story.day(days_ago + rng.randrange(0, 3))},
        "sleep": ({"status": "good"} if rng.random() < 0.7
                  else {"status": "poor", "note": "夜間に2〜3回覚醒。"}),
        "medication": {"adherence": "as_prescribed" if rng.random() < 0.8 else "sometimes_missed"},
        "observations": f"{story.md(days_ago)}訪問。{note}",
    }
    if profile.ulcer:
        data["skin"] = {"pressure_ulcer": "present", "site": "仙骨部", "design_r": "d2-e1s3i0g1n0p0:5",
                        "notes": "発赤は前回より縮小。ポジショニングを継続。"}
    else:
        data["skin"] = {"pressure_ulcer": "none"}
    if rng.random() < 0.2:
        data["request"] = {"profession": "pharmacist",
                           "text": "飲みにくい錠剤があるようです。剤形の変更をご検討ください。"}
    story.post("nurse", "care-note", data)


def _pharmacist_note(story: Story, profile: Profile, days_ago: int) -> None:
    rng = story.rng
    missed = rng.random() < 0.3
    story.post("pharmacist", "care-note", {
        "medication": {"adherence": "sometimes_missed" if missed else "as_prescribed",
                       "residual_drugs": f"{profile.medications[0][0]} 残薬{rng.randrange(1, 4)}錠" if missed
                       else "残薬なし",
                       "adverse_effects": "特になし"},
        "observations": f"{story.md(days_ago)} 居宅療養管理指導。お薬カレンダーへセット。"
        + ("飲み忘れが続くため、服薬時間の見直しを提案。" if missed else "服薬状況は良好。"),
    })


def _therapist_note(story: Story, days_ago: int) -> None:
    story.post("therapist", "care-note", {
        "observations": f"{story.md(days_ago)}訪問リハビリ。下肢筋力訓練と歩行練習（屋内10m×3往復）。"
        + story.rng.choice(["前回よりふらつき減少。", "疲労感強く、訓練量を調整。",
                            "玄関の段差昇降を練習。"]),
        "request": {"profession": "care_manager", "text": "浴室に手すりの追加をご検討ください。"},
    })


def _care_worker_note(story: Story, days_ago: int) -> None:
    rng = story.rng
    story.post("care_worker", "care-note", {
        "intake": {"meal_ratio": rng.randrange(6, 11), "notes": "昼食は全粥、副食はきざみ。"},
        "excretion": {"urination_count": rng.randrange(3, 6), "notes": "日中はトイレで排尿。"},
        "observations": f"{story.md(days_ago)} 訪問介護。昼食介助と更衣。"
        + rng.choice(["機嫌よく会話された。", "食後にむせ込み1回。", "洗濯物を一緒にたたんだ。"]),
    })


def _message(story: Story, which: int, days_ago: int) -> None:
    role, text = MESSAGES[which]
    to = None
    if role == "nurse":
        to = [RecipientIn(user_id=story.members["physician"].id)]
    story.post(role, "message", {"text": text.format(d=story.md(days_ago - 2))}, to=to)


def _fever(story: Story) -> None:
    """An urgent call and the physician's unscheduled visit."""
    physician = story.members["physician"]
    story.post("nurse", "message", {"text": "本日訪問時、体温38.6℃、SpO2 91%。痰がらみの咳あり。"
                                            "誤嚥性肺炎の疑い。至急往診をお願いします。"},
               urgent=True, to=[RecipientIn(user_id=physician.id)])
    story.post("physician", "physician-visit", {
        "visit_date": story.day(0), "next_visit_date": story.day(-2),
        "treatment_plan": {"changed": True, "summary": "誤嚥性肺炎疑い。自宅で抗菌薬点滴を開始。"},
        "cautions": "3日間、1日1回の点滴を訪問看護で実施してください。呼吸状態の悪化時は連絡を。",
        "vitals": {"systolic_bp": 118, "diastolic_bp": 66, "pulse": 104, "spo2": 92, "temperature": 38.4,
                   "respiration": 24},
        "findings": "右下肺野に湿性ラ音。意識清明。経口摂取は少量可能。",
        "prescriptions": {"changed": True, "details": "セフトリアキソン 1g 点滴 1日1回 3日間"},
    })


def _fall(story: Story, profile: Profile) -> None:
    story.post("nurse", "care-note", {
        "vitals": {**_vitals(story, profile)},
        "skin": {"pressure_ulcer": "none", "notes": "右前腕に皮下出血（3cm）。"},
        "observations": f"{story.md(1)}夜、トイレへ向かう途中で転倒と長女より連絡。緊急訪問。"
        "頭部打撲なし、右前腕に皮下出血。歩行は普段どおり可能。",
        "request": {"profession": "physician",
                    "text": "右手関節の痛みが続くため、明日の往診で確認をお願いします。"},
    }, urgent=True)


def _admission(story: Story, profile: Profile, key_person: dict, *, admitted: int) -> None:
    """The care manager's admission sheet to the hospital, acknowledged by its discharge coordinator."""
    cm = story.members["care_manager"]
    office, phone = CM_OFFICES[story.care_manager_office]
    data = {
        "header": {"record_date": story.day(0), "admission_date": story.day(admitted),
                   "recipient": {"hospital": "みどり総合病院 地域医療連携室",
                                 "contact_person": f"{story.members['msw'].name}（医療ソーシャルワーカー）"},
                   "sender": {"office": office, "care_manager": cm.name, "phone": phone},
                   "consent_given": True},
        "basic": {"housing": {"type": "detached", "floors": 2, "living_floor": 1, "elevator": False},
                  "bedridden_rank": "A2", "dementia_rank": "I", "copayment": "rate_1"},
        "family": {"household": "elderly_only", "alone_daytime": False, "key_person": key_person},
        "wishes": {"patient_wishes": "早く家に帰りたい。", "family_wishes": "退院後も自宅で介護を続けたい。"},
        "conference": {"in_hospital_conference": True, "discharge_conference": True,
                       "home_visit_accompany": False},
        "medication": {"oral_medication": "yes",
                       "oral_medication_text": "、".join(m[0] for m in profile.medications),
                       "managed_by": "other", "managed_by_text": "家族がお薬カレンダーで管理",
                       "adherence": "as_prescribed"},
        "physician": {"clinic": CLINIC[0], "phone": CLINIC[1], "doctor": story.members["physician"].name,
                      "visit_type": "home_visits", "visits_per_month": 2},
    }
    hospital = story.members["msw"].organisation_id
    entry = story.post("care_manager", "admission-info", data, to=[RecipientIn(organisation_id=hospital)])
    story.acknowledge("msw", entry)


def _discharge(story: Story, profile: Profile, *, admitted: int, discharged: int, acknowledged: bool) -> None:
    """The hospital's discharge sheet addressed to the care manager's office."""
    record = story.day(max(discharged + 2, 0))
    data = {
        "header": {"record_date": record},
        "attributes": {"care_level": "care_3", "applying": False, "change_application_needed": True},
        "admission": {"admission_date": story.day(admitted), "planned_discharge_date": story.day(discharged),
                      "reason": "誤嚥性肺炎" if story.index % 2 else "自宅で転倒し腰椎圧迫骨折。",
                      "facility": "みどり総合病院", "ward": "4階東病棟", "room": f"4{story.index:02d}",
                      "follow_up": {"institution": CLINIC[0], "method": "home_visits"}},
        "condition": {"diseases": [{"name": n, "status": "stable"} for n, _ in profile.diseases],
                      "mobility": ["walker"], "toileting": ["toilet", "diapers"], "bathing": "shower",
                      "choking": "sometimes", "dentures": "partial", "oral_hygiene": "good"},
        "understanding": {"patient_wishes": "家に帰りたい。", "family_wishes": "夜間のトイレ介助が不安。"},
        "needs": {"procedures": {"selected": ["none"]},
                  "nursing_points": ["toileting", "medication_teaching"],
                  "rehab_points": ["basic_movement", "adl_practice"], "contraindications": "none"},
        "prognosis": {"prognosis": "歩行器歩行は見守りで自立見込み。",
                      "requirements_for_home": "介護ベッドの導入、夜間のポータブルトイレ。"},
        "contact_log": [{"date": record, "informant_profession": "nurse", "informant_name": "伊藤 由美",
                         "conference_attended": False}]
        + ([{"date": record, "informant_profession": "physician", "informant_name": "渡辺 大輔",
             "conference_attended": True}] if acknowledged else []),
    }
    office = story.members["care_manager"].organisation_id
    entry = story.post("msw", "discharge-info", data, to=[RecipientIn(organisation_id=office)])
    if acknowledged:
        story.acknowledge("care_manager", entry)
