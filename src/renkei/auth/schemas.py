"""Request and response models for sign-in."""

from __future__ import annotations

import uuid

from pydantic import Field

from renkei.web.schemas import ResponseModel, StrictModel


class LoginIn(StrictModel):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)
    otp: str | None = Field(default=None, max_length=10)


class RefreshIn(StrictModel):
    refresh_token: str = Field(min_length=10, max_length=200)


class TokensOut(ResponseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class MeOut(ResponseModel):
    id: uuid.UUID
    email: str
    name: str
    profession: str
    role: str
    organisation_id: uuid.UUID
    organisation_name: str
    totp_enabled: bool
    totp_required: bool


class TotpEnrolIn(StrictModel):
    enrolment_code: str | None = Field(
        default=None, max_length=20, description="The one-time code an administrator handed over (1234-5678)")


class TotpEnrolOut(ResponseModel):
    secret: str
    otpauth_uri: str


class TotpCodeIn(StrictModel):
    code: str = Field(min_length=6, max_length=10)


class ReauthIn(StrictModel):
    password: str = Field(min_length=1, max_length=1024)
    otp: str | None = Field(default=None, max_length=10)


class PasswordChangeIn(StrictModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)
    otp: str | None = Field(default=None, max_length=10)
