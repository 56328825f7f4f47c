"""The `renkei` command: serve, migrate, demo, user create, keys init|status|rotate|prune, audit."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import timedelta

import uvicorn
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from renkei import demo
from renkei.audit import service as audit_service
from renkei.auth import enrolment, passwords
from renkei.config import Settings, UnsafeConfiguration
from renkei.crypto import keyfile
from renkei.crypto.keyring import Keyring, ensure_dev_keyfile, prune_keks, rotate_kek
from renkei.db import migrations
from renkei.db.engine import make_engine
from renkei.db.session import make_sessionmaker
from renkei.db.types import JST
from renkei.directory import service as directory_service
from renkei.directory.models import Organisation, OrgKind, Profession, User
from renkei.directory.schemas import Email
from renkei.patients import keys as patient_keys


# A retired KEK stays in the key file at least this long: far longer than any transaction that wrapped a data
# key under it before its server saw the rotation.
PRUNE_GRACE_HOURS = 24.0


def _settings() -> Settings:
    settings = Settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    return settings


def _keyring(settings: Settings) -> Keyring:
    if not settings.is_production and ensure_dev_keyfile(settings.key_file):  # type: ignore[arg-type]
        print(f"created a development key file at {settings.key_file} (mode 0600)", file=sys.stderr)
    return Keyring.open(settings.key_file)  # type: ignore[arg-type]


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    migrations.upgrade(settings.sqlalchemy_url)
    print("database migrated to head")
    return 0


# The largest websocket frame the server reads (a client only ever sends its small auth message).
WS_MAX_FRAME_BYTES = 64 * 1024


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings()
    settings.check_production()
    uvicorn.run("renkei.asgi:app", host=args.host, port=args.port, workers=args.workers,
                proxy_headers=True, forwarded_allow_ips=os.environ.get("RENKEI_FORWARDED_ALLOW_IPS", "127.0.0.1"),
                log_level=settings.log_level.lower(), ws="websockets",
                # Events are ~150-byte JSON: compression gains nothing and costs ~100 KiB per socket
                # (bench/README.md); nor should uvicorn buffer a 16 MiB frame before the app refuses it.
                ws_per_message_deflate=False, ws_max_size=WS_MAX_FRAME_BYTES,
                # uvicorn's access log prints query strings (a name filter is PHI); RequestContextMiddleware logs
                # one line per request with the route template only.
                access_log=False)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings()
    if settings.is_production:
        print("refused: `renkei demo` never runs against a production configuration", file=sys.stderr)
        return 2
    password = settings.demo_password or demo.DEFAULT_DEMO_PASSWORD
    problems = passwords.check_policy(password, path="RENKEI_DEMO_PASSWORD")
    if problems:
        print("refused: RENKEI_DEMO_PASSWORD does not meet the password policy: "
              + "; ".join(p.message_en for p in problems), file=sys.stderr)
        return 2
    keyring = _keyring(settings)
    engine = make_engine(settings.sqlalchemy_url)
    with make_sessionmaker(engine)() as session:
        if demo.is_loaded(session):
            if not args.skip_if_loaded:
                print("refused: the demo region is already loaded in this database "
                      "(use --skip-if-loaded to print the roster instead)", file=sys.stderr)
                return 1
            roster = demo.roster(session, keyring=keyring)
        else:
            roster = demo.load(session, keyring=keyring, password=password)
            session.commit()
    engine.dispose()
    if args.json:
        print(json.dumps({"users": roster.users, "organisations": roster.organisations,
                          "patients": roster.patients}, ensure_ascii=False, indent=2))
        return 0
    print("みどり市 demo region — every account's password: "
          + ("$RENKEI_DEMO_PASSWORD" if settings.demo_password else demo.DEFAULT_DEMO_PASSWORD)
          + f"; two-factor enrolment code (administrators, at first sign-in): {demo.DEMO_ENROLMENT_CODE}")
    print(f"{'email':34} {'name':12} {'profession':13} {'role':12} organisation")
    for u in roster.users:
        print(f"{u['email']:34} {u['name']:12} {u['profession']:13} {u['role']:12} {u['organisation']}")
    print(f"{len(roster.patients)} patients loaded.")
    return 0


def cmd_user_create(args: argparse.Namespace) -> int:
    settings = _settings()
    try:
        email = TypeAdapter(Email).validate_python(args.email)
    except ValidationError:
        print(f"refused: --email {args.email!r} is not an email address", file=sys.stderr)
        return 1
    password = os.environ.get("RENKEI_NEW_USER_PASSWORD") or getpass.getpass("Initial password: ")
    problems = directory_service.initial_password_problems(password, email=email, name=args.name)
    if problems:
        print("refused: " + "; ".join(p.message_en for p in problems), file=sys.stderr)
        return 1
    keyring = _keyring(settings)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_sessionmaker(engine)() as session:
            if session.scalars(select(User.id).where(User.email == email)).first() is not None:
                print(f"refused: a user with the email {email} already exists", file=sys.stderr)
                return 1
            org = session.scalars(select(Organisation).where(Organisation.name == args.organisation)).first()
            if org is None:
                org = Organisation(name=args.organisation, kind=args.org_kind)
                session.add(org)
                session.flush()
            user = directory_service.create_user(
                session, org_id=org.id, email=email, name=args.name, profession=args.profession,
                role=args.role, password=password)
            code = (enrolment.issue_enrolment_code(session, keyring=keyring, user=user)
                    if enrolment.enrolment_code_needed(settings, user) else None)
            session.commit()
            print(f"created user {user.id} ({args.role}, {args.profession}) in {org.name}")
            if code is not None:
                expires = code.expires_at.astimezone(JST).strftime("%Y-%m-%d %H:%M")
                print(f"two-factor enrolment code: {code.code} (valid until {expires} JST). Hand it over in "
                      "person: with the password it sets up two-factor sign-in, which this account requires.")
    finally:
        engine.dispose()
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    settings = _settings()
    if args.keys_command == "init":
        if settings.key_file.exists():  # type: ignore[union-attr]
            print(f"refused: {settings.key_file} already exists", file=sys.stderr)
            return 1
        keyfile.save(settings.key_file, keyfile.generate())  # type: ignore[arg-type]
        print(f"wrote a new key file to {settings.key_file} (mode 0600); back it up outside the database host")
        return 0
    keyring = _keyring(settings)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            if args.keys_command == "status":
                return _keys_status(session, settings, keyring)
            if args.keys_command == "rotate":
                return _keys_rotate(session, settings, keyring)
            return _keys_prune(session, settings, keyring, grace_hours=args.grace_hours)
    finally:
        engine.dispose()


def _keys_rotate(session: Session, settings: Settings, keyring: Keyring) -> int:
    assert settings.key_file is not None
    new_id, _ = rotate_kek(settings.key_file)
    keyring.reload()
    count = patient_keys.rewrap_all(session, keyring)
    print(f"new KEK {new_id}; rewrapped {count} data keys; {len(keyring.retired_keks)} retired KEK(s) kept "
          "for unwrapping until `renkei keys prune`")
    return 0


def _keys_prune(session: Session, settings: Settings, keyring: Keyring, *, grace_hours: float) -> int:
    assert settings.key_file is not None
    # Rewrap first: a server that wrapped under a retired KEK before it saw the rotation may have committed
    # since. Only a retired KEK that then wraps nothing may leave the file.
    count = patient_keys.rewrap_all(session, keyring)
    removed, kept = prune_keks(settings.key_file, in_use=set(patient_keys.kek_usage(session)),
                               grace=timedelta(hours=grace_hours))
    print(f"rewrapped {count} data keys; removed {len(removed)} retired KEK(s)"
          + (f"; kept {len(kept)} (in use, or retired less than {grace_hours:g} h ago)" if kept else ""))
    return 0


def _keys_status(session: Session, settings: Settings, keyring: Keyring) -> int:
    usage = patient_keys.kek_usage(session)
    retired = keyring.retired_keks
    print(f"key file: {settings.key_file}")
    print(f"current KEK: {keyring.current_kek_id}")
    for kek_id in keyring.kek_ids:
        note = f" (retired {retired[kek_id][:16]}, unwrap only)" if kek_id in retired else ""
        print(f"  {kek_id}: wraps {usage.get(kek_id, 0)} data keys{note}")
    missing = set(usage) - set(keyring.kek_ids)
    if missing:
        print(f"ERROR: data keys wrapped by KEKs missing from the key file: {sorted(missing)}")
        return 1
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    settings = _settings()
    keyring = _keyring(settings)
    directory = audit_service.checkpoint_dir(settings)
    # Verification only reads: on SQLite a plain deferred transaction reads a WAL snapshot without
    # taking the write lock that make_engine's BEGIN IMMEDIATE would hold for the whole scan.
    url = settings.sqlalchemy_url
    engine = create_engine(url) if settings.is_sqlite else make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            if args.audit_command == "checkpoint":
                path = audit_service.checkpoint_now(session, keyring, directory)
                print(f"checkpoint written: {path}" if path else "the audit log is empty; nothing to sign")
                return 0
            result = audit_service.verify(session, keyring, checkpoints=directory)
            if not result.ok:
                print(f"BROKEN: first broken sequence number {result.broken_seq} ({result.problem})")
                return 1
            # A verified head is signed so that rows removed from the end later are caught.
            if result.head_seq:
                audit_service.checkpoint_now(session, keyring, directory)
            print(f"OK: {result.rows} rows verified, head sequence number {result.head_seq}")
            return 0
    finally:
        engine.dispose()


def _non_negative(value: str) -> float:
    number = float(value)
    if not number >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="renkei", description="Renkei (連携) server and administration")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the web server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    p = sub.add_parser("demo", help="load the みどり市 demo region (never in production)")
    p.add_argument("--json", action="store_true", help="print the roster as JSON")
    p.add_argument("--skip-if-loaded", action="store_true", help="print the roster if already loaded")
    p.set_defaults(func=cmd_demo)
    user = sub.add_parser("user", help="user administration").add_subparsers(dest="user_command", required=True)
    p = user.add_parser("create", help="create a user (first admin in production)")
    p.add_argument("--email", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--organisation", required=True, help="organisation name (created if missing)")
    p.add_argument("--org-kind", default="municipality", choices=[k.value for k in OrgKind],
                   help="used when the organisation is created (default %(default)s)")
    p.add_argument("--profession", default="coordinator", choices=[k.value for k in Profession])
    p.add_argument("--role", default="region_admin", choices=["member", "org_admin", "region_admin"])
    p.set_defaults(func=cmd_user_create)
    keys = sub.add_parser("keys", help="key management")
    keys.add_argument("keys_command", choices=["init", "status", "rotate", "prune"],
                      help="prune: rewrap, then remove retired KEKs that wrap nothing")
    keys.add_argument("--grace-hours", type=_non_negative, default=PRUNE_GRACE_HOURS,
                      help="prune only KEKs retired at least this long ago (default %(default)s)")
    keys.set_defaults(func=cmd_keys)
    p = sub.add_parser("audit", help="verify the audit chain or sign a checkpoint")
    p.add_argument("audit_command", choices=["verify", "checkpoint"])
    p.set_defaults(func=cmd_audit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UnsafeConfiguration as exc:
        print(f"refused: unsafe production configuration: {exc}", file=sys.stderr)
        return 2
    except keyfile.KeyFileError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
