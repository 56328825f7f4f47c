"""A one-time code is spent once even when two requests race with it: the step is recorded by a
compare-and-set in the database, not from the value each request happened to read."""

from __future__ import annotations

import threading
import time

import pyotp
import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from renkei.auth import service as auth_service
from renkei.db.session import make_sessionmaker
from renkei.directory.models import Organisation, User
from renkei.errors import InvalidCredentials, OtpRequired
from tests.auth.support import away_from_step_boundary
from tests.conftest import BACKEND
from tests.factories import PASSWORD, TOTP_SECRET, enrol_totp, make_org, make_user


def _current_code() -> tuple[int, str]:
    away_from_step_boundary()
    step = int(time.time() // 30)
    return step, pyotp.TOTP(TOTP_SECRET).at(step * 30)


def _spent_elsewhere(db: Session, user: User, step: int) -> None:
    """Another request committed this step after ours had read the account (our copy is left stale)."""
    db.execute(update(User).where(User.id == user.id).values(totp_last_step=step),
               execution_options={"synchronize_session": False})
    assert user.totp_last_step is None


def test_sign_in_refuses_a_code_another_request_spent_after_this_one_read_the_account(db, settings, keyring):
    user = make_user(db, make_org(db))
    enrol_totp(db, keyring, user)
    step, code = _current_code()
    _spent_elsewhere(db, user, step)
    with pytest.raises(InvalidCredentials):
        auth_service.authenticate(db, settings=settings, keyring=keyring, email=user.email, password=PASSWORD,
                                  otp=code, client_ip="192.0.2.10")


def test_reauthentication_refuses_a_code_another_request_spent_after_this_one_read_the_account(
    db, settings, keyring,
):
    user = make_user(db, make_org(db))
    enrol_totp(db, keyring, user)
    step, code = _current_code()
    _spent_elsewhere(db, user, step)
    with pytest.raises(OtpRequired):
        auth_service.reauthenticate(db, settings=settings, keyring=keyring, user_id=user.id,
                                    password=PASSWORD, otp=code)


@pytest.mark.skipif(BACKEND != "postgres", reason="row locks between real concurrent transactions")
def test_two_concurrent_sign_ins_with_one_code_let_only_one_in(engine, settings, keyring):
    sessions = make_sessionmaker(engine)
    with sessions() as setup:
        org = make_org(setup, "並行試験クリニック")
        user = make_user(setup, org)
        enrol_totp(setup, keyring, user)
        setup.commit()
        user_id, org_id, email = user.id, org.id, user.email
    step, code = _current_code()
    outcome: dict[str, object] = {}

    def second_sign_in() -> None:
        with sessions() as other:
            try:
                auth_service.authenticate(other, settings=settings, keyring=keyring, email=email,
                                          password=PASSWORD, otp=code, client_ip="192.0.2.11")
                other.commit()
                outcome["second"] = "signed in"
            except InvalidCredentials:
                other.rollback()
                outcome["second"] = "refused"

    try:
        with sessions() as first:
            auth_service.authenticate(first, settings=settings, keyring=keyring, email=email,
                                      password=PASSWORD, otp=code, client_ip="192.0.2.10")
            # The first sign-in holds the row until it commits; the second has read the account meanwhile.
            racer = threading.Thread(target=second_sign_in)
            racer.start()
            racer.join(timeout=1.5)
            assert racer.is_alive(), "the second sign-in should be waiting for the first one's row lock"
            first.commit()
        racer.join(timeout=30)
        assert outcome == {"second": "refused"}
    finally:
        with sessions() as cleanup:
            cleanup.execute(delete(User).where(User.id == user_id))
            cleanup.execute(delete(Organisation).where(Organisation.id == org_id))
            cleanup.commit()
