"""Generate a benchmark region: P patients with care teams, consents and E encrypted timeline entries.

    .venv/bin/python -m bench.dataset --var-dir var/bench --patients 10000 --entries 1000000

Rows are written with SQLAlchemy Core in large batches (the services would take hours for a million entries),
but every ciphertext is produced exactly as the services produce it: the patient's data key, the same
associated data ("table.column") and the row id as binding, so the application reads them like its own.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, text

from renkei.auth import passwords
from renkei.config import Settings
from renkei.consent.models import Consent
from renkei.crypto import aead
from renkei.crypto.keyring import Keyring, ensure_dev_keyfile
from renkei.db import migrations
from renkei.db.engine import make_engine
from renkei.directory.models import Organisation, User
from renkei.patients.models import CareTeamMembership, Patient, PatientKey
from renkei.timeline.models import EntryRead, TimelineEntry
from tests.sheets.examples import EXAMPLES

BENCH_PASSWORD = "bench-passphrase-2026"
PATIENTS_PER_CIRCLE = 20
# Sheet mix of a home-care timeline: mostly daily notes and messages; who writes each follows SHEETS.md.
MIX = [("care-note", 0.50, "nurse"), ("message", 0.25, "care_manager"), ("physician-visit", 0.12, "physician"),
       ("emergency-info", 0.05, "physician"), ("acp", 0.03, "physician"), ("discharge-info", 0.03, "nurse"),
       ("admission-info", 0.02, "care_manager")]
CATEGORY = {"care-note": "care", "message": "message", "physician-visit": "visit", "emergency-info": "emergency",
            "acp": "acp", "discharge-info": "discharge", "admission-info": "admission"}


@dataclass(frozen=True)
class Circle:
    """One care circle: a physician, a nurse and a care manager serving PATIENTS_PER_CIRCLE patients."""

    users: dict[str, uuid.UUID]
    orgs: dict[str, uuid.UUID]


def bench_settings(var_dir: Path, database_url: str | None) -> Settings:
    var_dir.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite:///{(var_dir / 'bench.db').as_posix()}"
    settings = Settings(environment="development", var_dir=var_dir, database_url=url)
    ensure_dev_keyfile(settings.key_file)  # type: ignore[arg-type]
    return settings


def payloads() -> dict[str, dict[str, Any]]:
    """Realistic example payloads, without references to attachments or entries that do not exist."""
    def strip(node: Any) -> None:
        if isinstance(node, dict):
            for key in [k for k in node if k.endswith(("attachment_ids", "entry_id"))]:
                del node[key]
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for item in node:
                strip(item)

    out = copy.deepcopy(EXAMPLES)
    strip(out)
    out["acp"].pop("status", None)
    return out


def generate(settings: Settings, *, patients: int, entries: int, seed: int = 7, batch: int = 5000) -> dict[str, Any]:
    """Create the schema and the region; returns the roster the load runner needs."""
    rng = random.Random(seed)
    started = time.perf_counter()
    migrations.upgrade(settings.sqlalchemy_url)
    keyring = Keyring.open(settings.key_file)  # type: ignore[arg-type]
    engine = make_engine(settings.sqlalchemy_url)
    pw_hash = passwords.hash_password(BENCH_PASSWORD)
    now = datetime.now(UTC)
    circles = _circles(engine, (patients + PATIENTS_PER_CIRCLE - 1) // PATIENTS_PER_CIRCLE, pw_hash, now)
    patient_keys = _patients(engine, keyring, circles, patients, now)
    _entries(engine, rng, circles, patient_keys, entries, now, batch)
    if engine.dialect.name == "postgresql":
        # As after any bulk load: set hint bits and the visibility map now, or the first reads of the run pay
        # for it (and index-only scans cannot be used) while autovacuum has not come round yet.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    roster = {
        "patients": [str(p) for p in patient_keys],
        "circles": [{"users": {k: str(v) for k, v in c.users.items()}} for c in circles],
        "patients_per_circle": PATIENTS_PER_CIRCLE,
        "entries": entries,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (settings.var_dir / "roster.json").write_text(json.dumps(roster), encoding="utf-8")
    return roster


def _circles(engine: Engine, count: int, pw_hash: str, now: datetime) -> list[Circle]:
    orgs, users, circles = [], [], []
    kinds = {"physician": "home_care_clinic", "nurse": "visiting_nurse_station", "care_manager": "care_management_office"}
    for i in range(count):
        ids = {p: uuid.uuid4() for p in kinds}
        org_ids = {p: uuid.uuid4() for p in kinds}
        for profession, kind in kinds.items():
            orgs.append({"id": org_ids[profession], "name": f"ベンチ{kind}{i:04d}", "kind": kind, "phone": None,
                         "active": True, "created_at": now})
            users.append({"id": ids[profession], "organisation_id": org_ids[profession],
                          "email": f"{profession}-{i:04d}@bench.example", "name": f"ベンチ {profession} {i}",
                          "name_kana": None, "profession": profession, "role": "member", "password_hash": pw_hash,
                          "active": True, "totp_secret": None, "totp_enabled": False, "totp_last_step": None,
                          "created_at": now, "updated_at": now, "disabled_at": None})
        circles.append(Circle(ids, org_ids))
    with engine.begin() as conn:
        conn.execute(insert(Organisation), orgs)
        conn.execute(insert(User), users)
    return circles


def _patients(engine: Engine, keyring: Keyring, circles: list[Circle], count: int, now: datetime) -> (
    dict[uuid.UUID, tuple[str, bytes, Circle]]
):
    out: dict[uuid.UUID, tuple[str, bytes, Circle]] = {}
    patient_rows, key_rows, team_rows, consent_rows = [], [], [], []
    for n in range(count):
        circle = circles[n // PATIENTS_PER_CIRCLE]
        pid = uuid.uuid4()
        key_id = "dk-" + uuid.uuid4().hex[:16]
        data_key = keyring.new_data_key()
        kek_id, wrapped = keyring.wrap(data_key, owner=str(pid), key_id=key_id)
        identity = {"name": f"ベンチ 患者{n}", "name_kana": f"ベンチ カンジャ{n}", "birth_date": "1940-01-01",
                    "sex": "female", "care_level": "care_2"}
        patient_rows.append({"id": pid, "identity_ct": _seal(data_key, key_id, "patient.identity_ct",
                                                             f"patient:{pid}", identity),
                             "created_by": circle.users["physician"], "created_at": now, "updated_at": now})
        key_rows.append({"key_id": key_id, "patient_id": pid, "kek_id": kek_id, "wrapped": wrapped, "active": True,
                         "created_at": now})
        for profession, role in (("physician", "attending_physician"), ("nurse", "visiting_nurse"),
                                 ("care_manager", "care_manager")):
            team_rows.append({"id": uuid.uuid4(), "patient_id": pid, "user_id": circle.users[profession],
                              "organisation_id": circle.orgs[profession], "team_role": role,
                              "start_date": date(2024, 1, 1), "end_date": None, "added_by": circle.users["physician"],
                              "created_at": now, "ended_at": None, "ended_by": None, "end_reason": None})
        consent_id = uuid.uuid4()
        consent_rows.append({"id": consent_id, "patient_id": pid, "version": 1, "given_by": "patient",
                             "method": "written", "scope": "blanket", "excluded_categories": "",
                             "obtained_on": date(2024, 1, 1), "valid_from": date(2024, 1, 1), "valid_until": None,
                             "details_ct": _seal(data_key, key_id, "consent.details_ct", f"consent:{consent_id}", {}),
                             "recorded_by": circle.users["physician"], "recorded_org_id": circle.orgs["physician"],
                             "recorded_at": now, "superseded_at": None, "superseded_by": None, "withdrawn_at": None,
                             "withdrawn_on": None, "withdrawn_by": None, "withdrawal_ct": None})
        out[pid] = (key_id, data_key, circle)
    with engine.begin() as conn:
        conn.execute(insert(Patient), patient_rows)
        conn.execute(insert(PatientKey), key_rows)
        conn.execute(insert(CareTeamMembership), team_rows)
        conn.execute(insert(Consent), consent_rows)
    return out


def _entries(engine: Engine, rng: random.Random, circles: list[Circle],
             patient_keys: dict[uuid.UUID, tuple[str, bytes, Circle]], count: int, now: datetime, batch: int) -> None:
    data = payloads()
    sheets = [m[0] for m in MIX]
    weights = [m[1] for m in MIX]
    authors = {m[0]: m[2] for m in MIX}
    pids = list(patient_keys)
    span = timedelta(days=730).total_seconds()
    rows: list[dict[str, Any]] = []
    reads: list[dict[str, Any]] = []
    for n in range(count):
        pid = pids[n % len(pids)]
        key_id, data_key, circle = patient_keys[pid]
        sheet = rng.choices(sheets, weights)[0]
        profession = authors[sheet]
        entry_id = uuid.uuid4()
        posted = now - timedelta(seconds=rng.random() * span)
        rows.append({
            "id": entry_id, "patient_id": pid, "record_id": entry_id, "version": 1, "revision": 1,
            "sheet_id": sheet, "sheet_version": 1, "category": CATEGORY[sheet], "status": "final",
            "priority": "urgent" if rng.random() < 0.03 else "normal", "is_head": True,
            "author_id": circle.users[profession], "author_organisation_id": circle.orgs[profession],
            "author_profession": profession,
            "payload_ct": _seal(data_key, key_id, "timeline_entry.payload_ct", str(entry_id), data[sheet]),
            "supersedes_id": None, "amendment_reason_ct": None, "created_at": posted, "updated_at": posted,
            "record_posted_at": posted, "posted_at": posted, "error_at": None, "error_by": None,
            "error_reason_ct": None,
        })
        reads.append({"entry_id": entry_id, "user_id": circle.users[profession], "read_at": posted})
        if len(rows) >= batch:
            _flush(engine, rows, reads)
            print(f"  {n + 1:>9,} / {count:,} entries", file=sys.stderr, flush=True)
    _flush(engine, rows, reads)


def _flush(engine: Engine, rows: list[dict[str, Any]], reads: list[dict[str, Any]]) -> None:
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(TimelineEntry), rows)
            conn.execute(insert(EntryRead), reads)
    rows.clear()
    reads.clear()


def _seal(key: bytes, key_id: str, aad: str, binding: str, value: Any) -> bytes:
    """What renkei.patients.keys.seal_json does, with the data key already in hand."""
    payload = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
    return aead.seal(key, key_id, aad=aad, binding=binding, payload=payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--var-dir", type=Path, default=Path("var/bench"))
    parser.add_argument("--database-url", default=None, help="default: sqlite:///<var-dir>/bench.db")
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    settings = bench_settings(args.var_dir, args.database_url)
    if settings.is_sqlite and Path(settings.database_url.removeprefix("sqlite:///")).exists():
        print(f"refusing to overwrite {settings.database_url}; delete it first", file=sys.stderr)
        return 1
    roster = generate(settings, patients=args.patients, entries=args.entries, seed=args.seed)
    print(json.dumps({"patients": len(roster["patients"]), "entries": roster["entries"],
                      "seconds": roster["seconds"], "database": settings.database_url}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
