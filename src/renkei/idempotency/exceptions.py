"""Errors of the idempotency mechanism."""

from __future__ import annotations

from renkei.errors import InvalidInput


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"
    detail_default = "This Idempotency-Key was already used for a different request"
