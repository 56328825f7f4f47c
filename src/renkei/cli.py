"""The `renkei` command: serve, migrate, demo, user create, keys init|status|rotate, audit verify|checkpoint."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence

import uvicorn
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from renkei import demo
from renkei.audit import service as audit_service
from renkei.auth import passwords
from renkei.config import Settings, UnsafeConfiguration
from renkei.crypto import keyfile
from renkei.crypto.keyring import Keyring, ensure_dev_keyfile, retire_keks, rotate_kek
from renkei.db import migrations
from renkei.db.engine import make_engine
from renkei.db.session import make_sessionmaker
from renkei.directory import service as directory_service
from renkei.directory.models import Organisation, OrgKind
from renkei.patients import keys as patient_keys


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


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings()
    settings.check_production()
    uvicorn.run("renkei.asgi:app", host=args.host, port=args.port, workers=args.workers,
                proxy_headers=True, forwarded_allow_ips=os.environ.get("RENKEI_FORWARDED_ALLOW_IPS", "127.0.0.1"),
                log_level=settings.log_level.lower(), ws="websockets",
                # uvicorn's access log prints query strings (a name filter is PHI); RequestContextMiddleware logs
                # one line per request with the route template only.
                access_log=False)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings()
    if settings.is_production:
        print("refused: `renkei demo` never runs against a production configuration", file=sys.stderr)
        return 2
    keyring = _keyring(settings)
    engine = make_engine(settings.sqlalchemy_url)
    password = os.environ.get("RENKEI_DEMO_PASSWORD") or demo.DEFAULT_DEMO_PASSWORD
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
          + ("$RENKEI_DEMO_PASSWORD" if os.environ.get("RENKEI_DEMO_PASSWORD") else demo.DEFAULT_DEMO_PASSWORD))
    print(f"{'email':34} {'name':12} {'profession':13} {'role':12} organisation")
    for u in roster.users:
        print(f"{u['email']:34} {u['name']:12} {u['profession']:13} {u['role']:12} {u['organisation']}")
    print(f"{len(roster.patients)} patients loaded.")
    return 0


def cmd_user_create(args: argparse.Namespace) -> int:
    settings = _settings()
    password = os.environ.get("RENKEI_NEW_USER_PASSWORD") or getpass.getpass("Initial password: ")
    problems = passwords.check_policy(password)
    if problems:
        print("refused: " + "; ".join(p.message_en for p in problems), file=sys.stderr)
        return 1
    engine = make_engine(settings.sqlalchemy_url)
    with make_sessionmaker(engine)() as session:
        org = session.scalars(select(Organisation).where(Organisation.name == args.organisation)).first()
        if org is None:
            org = Organisation(name=args.organisation, kind=OrgKind(args.org_kind).value)
            session.add(org)
            session.flush()
        user = directory_service.create_user(session, org_id=org.id, email=args.email, name=args.name,
                                             profession=args.profession, role=args.role, password=password)
        session.commit()
        print(f"created user {user.id} ({args.role}) in {org.name}")
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
    with Session(engine) as session:
        if args.keys_command == "status":
            usage = patient_keys.kek_usage(session)
            print(f"key file: {settings.key_file}")
            print(f"current KEK: {keyring.current_kek_id}")
            for kek_id in keyring.kek_ids:
                print(f"  {kek_id}: wraps {usage.get(kek_id, 0)} data keys")
            missing = set(usage) - set(keyring.kek_ids)
            if missing:
                print(f"ERROR: data keys wrapped by KEKs missing from the key file: {sorted(missing)}")
                return 1
            return 0
        new_id, _ = rotate_kek(settings.key_file)  # type: ignore[arg-type]
        keyring.reload()
        count = patient_keys.rewrap_all(session, keyring)
        still_used = set(patient_keys.kek_usage(session))
        retired = retire_keks(settings.key_file, keep=still_used)  # type: ignore[arg-type]
        # A server that had not yet seen the new key file may have committed a new patient's data key
        # under an old KEK meanwhile; this keyring still holds the retired KEKs in memory to rewrap it.
        count += patient_keys.rewrap_all(session, keyring)
        print(f"new KEK {new_id}; rewrapped {count} data keys; retired {len(retired)} old KEK(s)")
    engine.dispose()
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
    p.add_argument("--org-kind", default="municipality")
    p.add_argument("--profession", default="coordinator")
    p.add_argument("--role", default="region_admin", choices=["member", "org_admin", "region_admin"])
    p.set_defaults(func=cmd_user_create)
    keys = sub.add_parser("keys", help="key management")
    keys.add_argument("keys_command", choices=["init", "status", "rotate"])
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
