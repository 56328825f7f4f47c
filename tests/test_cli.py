"""The `renkei` command: demo region, production refusals, key file initialisation."""

from __future__ import annotations

import io
import re
import json
import stat
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from renkei import cli, demo
from renkei.app import create_app
from renkei.config import Settings, UnsafeConfiguration
from renkei.crypto import keyfile
from renkei.directory.models import Organisation, Profession, User
from renkei.patients import service as patient_service
from renkei.patients.models import CareTeamMembership, Patient
from tests.crypto import live


@dataclass(frozen=True)
class DemoRun:
    var_dir: Path
    url: str
    code: int
    out: str
    err: str

    @property
    def settings(self) -> Settings:
        return live.settings_for(self.var_dir, self.url)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`renkei migrate` then `renkei demo` once for this module, exactly as an operator runs them."""
    var_dir = tmp_path_factory.mktemp("demo")
    with live.scratch_database(var_dir) as url, pytest.MonkeyPatch.context() as mp:
        live.cli_environment(mp, var_dir, url)
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            assert cli.main(["migrate"]) == 0
            code = cli.main(["demo"])
        yield DemoRun(var_dir, url, code, out.getvalue(), err.getvalue())


@pytest.fixture
def demo_env(demo_run, monkeypatch) -> DemoRun:
    live.cli_environment(monkeypatch, demo_run.var_dir, demo_run.url)
    return demo_run


def test_demo_loads_nine_organisations_every_profession_and_twenty_patients_with_teams(demo_run):
    assert demo_run.code == 0, demo_run.err
    settings = demo_run.settings
    keyring = live.open_keyring(settings)
    with live.committing_session(settings) as session:
        assert session.scalar(select(func.count()).select_from(Organisation)) == 9
        users = list(session.scalars(select(User)))
        assert {u.profession for u in users} == {p.value for p in Profession}
        assert all(u.email.endswith("@" + demo.DEMO_DOMAIN) for u in users)
        admins = {u.organisation_id for u in users if u.role in ("org_admin", "region_admin")}
        assert len(admins) == 9, "every organisation has an administrator"
        patients = list(session.scalars(select(Patient)))
        assert len(patients) == 20
        names = {patient_service.decrypt_identity(session, keyring, p).name for p in patients}
        assert len(names) == 20 and all(" " in n for n in names)
        active = list(session.scalars(select(CareTeamMembership).where(CareTeamMembership.ended_at.is_(None))))
        roles = Counter((m.patient_id, m.team_role) for m in active)
        for p in patients:
            for role in ("care_manager", "attending_physician", "visiting_nurse", "pharmacist"):
                assert roles[(p.id, role)] >= 1, (p.id, role)
        on_a_team = {m.user_id for m in active}
        er_doctor = next(u for u in users if u.email == f"dr.er@{demo.DEMO_DOMAIN}")
        assert er_doctor.profession == "physician" and er_doctor.id not in on_a_team, "break-the-glass physician"
        second_office = {u.id for u in users if u.email == f"cm.kimura@{demo.DEMO_DOMAIN}"}
        assert second_office & on_a_team, "the second care-management office is on some teams"


def test_demo_prints_the_roster_and_the_shared_password(demo_run):
    lines = demo_run.out.splitlines()
    assert any(demo.DEFAULT_DEMO_PASSWORD in line for line in lines[:3])
    for local, name, _kana, profession, _org, role in demo.USERS:
        row = next(line for line in lines if line.startswith(f"{local}@{demo.DEMO_DOMAIN} "))
        assert name in row and profession in row and role in row
    assert lines[-1] == "20 patients loaded."


def test_demo_account_signs_in_with_the_demo_password(demo_run):
    with TestClient(create_app(demo_run.settings)) as client:
        r = client.post("/api/v1/auth/login",
                        json={"email": f"dr.sato@{demo.DEMO_DOMAIN}", "password": demo.DEFAULT_DEMO_PASSWORD})
        assert r.status_code == 200, r.text
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == f"dr.sato@{demo.DEMO_DOMAIN}"


def test_second_demo_refuses_with_exit_code_1_and_changes_nothing(demo_env, capsys):
    code, out, err = live.run_cli(capsys, "demo")
    assert code == 1
    assert out == ""
    assert "already loaded" in err and "--skip-if-loaded" in err
    with live.committing_session(demo_env.settings) as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 20
        assert session.scalar(select(func.count()).select_from(Organisation)) == 9


def test_skip_if_loaded_json_prints_the_roster_as_json(demo_env, capsys):
    code, out, err = live.run_cli(capsys, "demo", "--skip-if-loaded", "--json")
    assert code == 0, err
    roster = json.loads(out)
    assert set(roster) == {"users", "organisations", "patients"}
    assert len(roster["organisations"]) == 9
    assert len(roster["users"]) == len(demo.USERS)
    assert {u["email"] for u in roster["users"]} == {f"{u[0]}@{demo.DEMO_DOMAIN}" for u in demo.USERS}
    assert set(roster["users"][0]) == {"id", "email", "name", "profession", "organisation", "role"}
    assert len(roster["patients"]) == 20
    assert all(p["team"] for p in roster["patients"])
    assert demo.DEFAULT_DEMO_PASSWORD not in out and "password" not in out


def test_demo_refuses_a_production_configuration_with_exit_code_2(tmp_path, monkeypatch, capsys):
    with live.scratch_database(tmp_path) as url:
        live.cli_environment(monkeypatch, tmp_path, url, RENKEI_ENVIRONMENT="production")
        code, out, err = live.run_cli(capsys, "demo")
    assert code == 2
    assert "refused" in err and "production" in err
    assert not (tmp_path / "keys.json").exists(), "no development key file in production"


PRODUCTION_OK = {
    "environment": "production", "cookie_secure": True, "allowed_hosts": ["renkei.midori.example"],
    "public_url": "https://renkei.midori.example",
}


def _production(tmp_path: Path, **overrides: object) -> Settings:
    key_file = tmp_path / "prod-keys.json"
    if not key_file.exists():
        keyfile.save(key_file, keyfile.generate())
    values = {**PRODUCTION_OK, "var_dir": tmp_path, "key_file": key_file,
              "database_url": f"sqlite:///{tmp_path}/prod.db", **overrides}
    return Settings(**values)


def test_safe_production_configuration_is_accepted(tmp_path):
    _production(tmp_path).check_production()


@pytest.mark.parametrize(("override", "problem"), [
    ({"key_file": Path("/nonexistent/keys.json")}, "RENKEI_KEY_FILE"),
    ({"cookie_secure": False}, "RENKEI_COOKIE_SECURE"),
    ({"allowed_hosts": ["renkei.midori.example", "testserver"]}, "RENKEI_ALLOWED_HOSTS"),
    ({"public_url": "http://renkei.midori.example"}, "RENKEI_PUBLIC_URL"),
], ids=["no-key-file", "insecure-cookie", "test-host", "plain-http"])
def test_unsafe_production_configuration_is_refused(tmp_path, override, problem):
    settings = _production(tmp_path, **override)
    with pytest.raises(UnsafeConfiguration, match=problem):
        settings.check_production()
    with pytest.raises(UnsafeConfiguration, match=problem):
        create_app(settings)


def test_production_without_a_key_file_never_gets_a_development_one(tmp_path):
    settings = Settings(environment="production", var_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/p.db")
    with pytest.raises(UnsafeConfiguration, match="RENKEI_KEY_FILE"):
        create_app(settings)
    assert not (tmp_path / "keys.json").exists()


def test_serve_refuses_an_unsafe_production_configuration_with_exit_code_2(tmp_path, monkeypatch, capsys):
    live.cli_environment(monkeypatch, tmp_path, f"sqlite:///{tmp_path}/p.db", RENKEI_ENVIRONMENT="production")
    code, _, err = live.run_cli(capsys, "serve", "--port", "1")
    assert code == 2
    assert "unsafe production configuration" in err and "RENKEI_KEY_FILE" in err


def test_key_commands_refuse_cleanly_when_the_production_key_file_is_missing(tmp_path, monkeypatch, capsys):
    live.cli_environment(monkeypatch, tmp_path, f"sqlite:///{tmp_path}/p.db", RENKEI_ENVIRONMENT="production")
    for command in ("status", "rotate"):
        code, _, err = live.run_cli(capsys, "keys", command)
        assert code == 2 and err.startswith("refused: key file not found"), err
    assert not (tmp_path / "keys.json").exists()


def test_keys_init_writes_a_0600_key_file_and_refuses_to_overwrite_it(tmp_path, monkeypatch, capsys):
    live.cli_environment(monkeypatch, tmp_path, f"sqlite:///{tmp_path}/p.db")
    code, out, _ = live.run_cli(capsys, "keys", "init")
    key_file = tmp_path / "keys.json"
    assert code == 0 and str(key_file) in out
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    content = key_file.read_bytes()
    code, _, err = live.run_cli(capsys, "keys", "init")
    assert code == 1 and "already exists" in err
    assert key_file.read_bytes() == content


# -- renkei user create ------------------------------------------------------------------------------

FIRST_ADMIN_PASSWORD = "みどり市の最初の管理者2026"


@pytest.fixture
def empty_deployment(tmp_path, monkeypatch, capsys):
    """A migrated, empty database as `renkei user create` meets it on a new installation."""
    with live.scratch_database(tmp_path) as url:
        live.cli_environment(monkeypatch, tmp_path, url, RENKEI_NEW_USER_PASSWORD=FIRST_ADMIN_PASSWORD)
        assert live.run_cli(capsys, "migrate")[0] == 0
        yield live.settings_for(tmp_path, url)


def _create(capsys, *extra: str) -> tuple[int, str, str]:
    return live.run_cli(capsys, "user", "create", "--email", "Admin@Midori-City.example", "--name", "池田 聡",
                        "--organisation", "みどり市役所", *extra)


def _users(settings: Settings) -> list[User]:
    with live.committing_session(settings) as session:
        return list(session.scalars(select(User)))


def test_user_create_makes_the_first_region_admin_and_prints_their_enrolment_code(empty_deployment, capsys):
    code, out, err = _create(capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("created user ") and "(region_admin, coordinator) in みどり市役所" in lines[0]
    enrolment_code = re.search(r"two-factor enrolment code: (\d{4}-\d{4}) \(valid until ", lines[1]).group(1)
    [user] = _users(empty_deployment)
    assert user.email == "admin@midori-city.example"
    assert (user.role, user.profession) == ("region_admin", "coordinator")
    assert FIRST_ADMIN_PASSWORD not in out + err
    with TestClient(create_app(empty_deployment)) as client:
        login = client.post("/api/v1/auth/login",
                            json={"email": user.email, "password": FIRST_ADMIN_PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        enrol = "/api/v1/auth/totp/enrol"
        assert client.post(enrol, headers=headers).status_code == 422, "the password alone does not enrol"
        assert client.post(enrol, headers=headers, json={"enrolment_code": enrolment_code}).status_code == 200


def test_user_create_prints_no_enrolment_code_where_two_factor_is_optional(empty_deployment, capsys):
    code, out, err = _create(capsys, "--role", "member", "--profession", "physician", "--org-kind", "clinic")
    assert code == 0, err
    assert "enrolment code" not in out and len(out.splitlines()) == 1


@pytest.mark.parametrize("option", [("--profession", "wizard"), ("--org-kind", "castle"), ("--role", "king")])
def test_user_create_refuses_a_value_outside_the_allowed_list_with_exit_code_2(
    empty_deployment, capsys, option,
):
    with pytest.raises(SystemExit) as exit_info:
        _create(capsys, *option)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option[0]}: invalid choice: '{option[1]}'" in err and "Traceback" not in err
    assert _users(empty_deployment) == []


def test_user_create_refuses_a_duplicate_email_cleanly(empty_deployment, capsys):
    assert _create(capsys)[0] == 0
    code, out, err = _create(capsys, "--role", "member")
    assert code == 1 and out == ""
    assert err == "refused: a user with the email admin@midori-city.example already exists\n"
    assert len(_users(empty_deployment)) == 1


@pytest.mark.parametrize(("password", "problem"), [("short", "at least 12 characters"),
                                                    ("password1234", "too common")])
def test_user_create_refuses_a_weak_password(empty_deployment, capsys, monkeypatch, password, problem):
    monkeypatch.setenv("RENKEI_NEW_USER_PASSWORD", password)
    code, _, err = _create(capsys)
    assert code == 1 and err.startswith("refused: ") and problem in err
    assert _users(empty_deployment) == []


def test_user_create_refuses_an_invalid_email(empty_deployment, capsys):
    code, _, err = live.run_cli(capsys, "user", "create", "--email", "not-an-address", "--name", "池田 聡",
                                "--organisation", "みどり市役所")
    assert code == 1 and "is not an email address" in err
    assert _users(empty_deployment) == []


# -- the development key file says so once ----------------------------------------------------------


def test_the_app_says_once_that_it_created_a_development_key_file(tmp_path, caplog):
    settings = Settings(environment="development", var_dir=tmp_path,
                        database_url=f"sqlite:///{tmp_path}/x.db")
    with caplog.at_level("WARNING", logger="renkei"):
        create_app(settings)
        create_app(settings)
    said = [r.getMessage() for r in caplog.records if "development key file" in r.getMessage()]
    key_file = tmp_path / "keys.json"
    assert said == [f"created a development key file at {key_file} (mode 0600); keep it out of git"]


def test_the_command_line_says_once_that_it_created_a_development_key_file(empty_deployment, capsys):
    key_file = empty_deployment.key_file
    key_file.unlink()
    first = live.run_cli(capsys, "keys", "status")
    second = live.run_cli(capsys, "keys", "status")
    assert first[0] == second[0] == 0
    assert first[2] == f"created a development key file at {key_file} (mode 0600)\n"
    assert second[2] == ""


# -- production refuses a key file others can read; the demo password meets the policy ---------------


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_production_refuses_a_key_file_readable_by_group_or_others(tmp_path, mode):
    settings = _production(tmp_path)
    settings.key_file.chmod(mode)
    with pytest.raises(UnsafeConfiguration, match=r"RENKEI_KEY_FILE must be readable by its owner only"):
        settings.check_production()


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_production_accepts_a_key_file_only_its_owner_can_read(tmp_path, mode):
    settings = _production(tmp_path)
    settings.key_file.chmod(mode)
    settings.check_production()


def test_demo_refuses_a_demo_password_that_fails_the_policy(tmp_path, monkeypatch, capsys):
    with live.scratch_database(tmp_path) as url:
        live.cli_environment(monkeypatch, tmp_path, url, RENKEI_DEMO_PASSWORD="demo")
        assert live.run_cli(capsys, "migrate")[0] == 0
        code, out, err = live.run_cli(capsys, "demo")
        assert code == 2 and out == ""
        assert err.startswith("refused: RENKEI_DEMO_PASSWORD does not meet the password policy: ")
        assert "at least 12 characters" in err
        with live.committing_session(live.settings_for(tmp_path, url)) as session:
            assert session.scalar(select(func.count()).select_from(User)) == 0
