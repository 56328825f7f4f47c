"""JSON API for sign-in, tokens, the current user and TOTP."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from renkei.auth import enrolment, passwords, service
from renkei.auth.dependencies import ActorDep, KeyringDep, SettingsDep, client_ip
from renkei.auth.schemas import (
    LoginIn,
    MeOut,
    PasswordChangeIn,
    ReauthIn,
    RefreshIn,
    TokensOut,
    TotpCodeIn,
    TotpEnrolIn,
    TotpEnrolOut,
)
from renkei.db.session import SessionDep
from renkei.directory import service as directory_service
from renkei.errors import InvalidInput

router = APIRouter(tags=["auth"])


@router.post("/auth/login", response_model=TokensOut, summary="Sign in with email and password (+ TOTP)")
def login(body: LoginIn, request: Request, session: SessionDep, settings: SettingsDep, keyring: KeyringDep):
    """Exchange credentials for an access token and a refresh token."""
    user = service.authenticate(session, settings=settings, keyring=keyring, email=body.email,
                                password=body.password, otp=body.otp, client_ip=client_ip(request))
    auth, refresh_token = service.start_session(session, settings=settings, user=user, kind="api")
    issued = service.issue_tokens(settings, keyring, auth, refresh_token)
    return TokensOut(access_token=issued.access_token, refresh_token=issued.refresh_token,
                     expires_in=issued.expires_in)


@router.post("/auth/refresh", response_model=TokensOut, summary="Rotate a refresh token")
def refresh(body: RefreshIn, session: SessionDep, settings: SettingsDep, keyring: KeyringDep):
    """Spend a refresh token for a new pair; reuse of a spent token ends the whole sign-in."""
    issued = service.refresh(session, settings=settings, keyring=keyring, refresh_token=body.refresh_token)
    return TokensOut(access_token=issued.access_token, refresh_token=issued.refresh_token,
                     expires_in=issued.expires_in)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, summary="End this sign-in")
def logout(actor: ActorDep, session: SessionDep) -> None:
    """Revoke the current session: its access and refresh tokens stop working at once."""
    service.revoke_session(session, actor.session_id, reason="logout")


@router.get("/me", response_model=MeOut, summary="The signed-in professional")
def me(actor: ActorDep, session: SessionDep, settings: SettingsDep):
    """Who am I, in which organisation, with which role."""
    return directory_service.me(session, settings=settings, user_id=actor.user_id)


@router.post("/auth/totp/enrol", response_model=TotpEnrolOut, summary="Start TOTP enrolment")
def totp_enrol(actor: ActorDep, session: SessionDep, settings: SettingsDep, keyring: KeyringDep,
               body: TotpEnrolIn | None = None):
    """Create a new TOTP secret for the authenticator app (shown only here); confirm it with a code. Where
    two-factor sign-in is required, this takes the enrolment code an administrator handed over."""
    secret, uri = enrolment.begin_totp_enrolment(
        session, settings=settings, keyring=keyring, user_id=actor.user_id,
        enrolment_code=body.enrolment_code if body else None)
    return TotpEnrolOut(secret=secret, otpauth_uri=uri)


@router.post("/auth/totp/confirm", status_code=status.HTTP_204_NO_CONTENT, summary="Confirm TOTP enrolment")
def totp_confirm(body: TotpCodeIn, actor: ActorDep, session: SessionDep, keyring: KeyringDep) -> None:
    """Enable two-factor sign-in once the first code checks out."""
    enrolment.confirm_totp_enrolment(session, keyring=keyring, user_id=actor.user_id, code=body.code)


@router.post("/auth/totp/disable", status_code=status.HTTP_204_NO_CONTENT, summary="Turn TOTP off")
def totp_disable(
    body: ReauthIn, actor: ActorDep, session: SessionDep, settings: SettingsDep, keyring: KeyringDep
) -> None:
    """Turn two-factor sign-in off (not allowed where it is required)."""
    service.reauthenticate(session, settings=settings, keyring=keyring, user_id=actor.user_id,
                           password=body.password, otp=body.otp)
    directory_service.disable_own_totp(session, settings=settings, user_id=actor.user_id)


@router.post("/auth/password", status_code=status.HTTP_204_NO_CONTENT, summary="Change my password")
def change_password(
    body: PasswordChangeIn, actor: ActorDep, session: SessionDep, settings: SettingsDep, keyring: KeyringDep
) -> None:
    """Change the password; every other session of this user ends."""
    service.reauthenticate(session, settings=settings, keyring=keyring, user_id=actor.user_id,
                           password=body.current_password, otp=body.otp)
    problems = passwords.check_policy(body.new_password, path="/new_password")
    if problems:
        raise InvalidInput(fields=problems)
    directory_service.set_password(session, user_id=actor.user_id, password=body.new_password,
                                   keep_session=actor.session_id)
