"""`renkei audit verify` and `renkei audit checkpoint` on a real database file."""

from __future__ import annotations

import sqlite3

import pytest

from renkei import cli
from renkei.audit import service as audit
from renkei.config import Settings
from renkei.crypto.keyring import Keyring, ensure_dev_keyfile
from renkei.db.engine import make_engine
from renkei.db.session import make_sessionmaker


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    db_file = tmp_path / "renkei.db"
    monkeypatch.setenv("RENKEI_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("RENKEI_DATABASE_URL", f"sqlite:///{db_file}")
    monkeypatch.delenv("RENKEI_KEY_FILE", raising=False)
    assert cli.main(["migrate"]) == 0
    settings = Settings()
    ensure_dev_keyfile(settings.key_file)
    keyring = Keyring.open(settings.key_file)
    engine = make_engine(settings.sqlalchemy_url)
    for n in range(5):
        with make_sessionmaker(engine)() as session:
            audit.record(session, actor=None, action="lookup", allowed=True, reason=f"cli_{n}")
            audit.write_pending(session, keyring)
            session.commit()
    engine.dispose()
    return db_file


def _tamper(db_file, *statements: str) -> None:
    conn = sqlite3.connect(db_file)
    conn.execute("DROP TRIGGER audit_event_no_update")
    conn.execute("DROP TRIGGER audit_event_no_delete")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def test_verify_prints_ok_and_signs_the_head(deployment, tmp_path, capsys):
    assert cli.main(["audit", "verify"]) == 0
    assert "OK: 5 rows verified, head sequence number 5" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "audit-checkpoints").iterdir()] == ["checkpoint-000000000005.json"]


def test_verify_names_the_first_broken_row_and_fails(deployment, capsys):
    _tamper(deployment, "UPDATE audit_event SET reason = 'edited' WHERE seq = 3")
    assert cli.main(["audit", "verify"]) == 1
    assert "BROKEN: first broken sequence number 3" in capsys.readouterr().out


def test_truncating_the_log_after_a_checkpoint_is_caught(deployment, capsys):
    assert cli.main(["audit", "checkpoint"]) == 0
    assert "checkpoint written" in capsys.readouterr().out
    _tamper(deployment, "DELETE FROM audit_event WHERE seq >= 4")
    assert cli.main(["audit", "verify"]) == 1
    assert "first broken sequence number 4" in capsys.readouterr().out
