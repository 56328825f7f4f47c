"""Errors specific to sign-in."""

from __future__ import annotations

from renkei.errors import Forbidden


class TotpEnrolmentRequired(Forbidden):
    """An account that must use two-factor sign-in has not enrolled yet; only enrolment is open to it."""

    code = "totp_enrolment_required"
    detail_default = "Two-factor authentication must be set up first (二要素認証の設定が必要です)"
