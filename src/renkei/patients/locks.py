"""The patient row as the lock under which changes of one patient's shared state take turns."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.patients.models import Patient


def lock_patient(session: Session, patient_id: uuid.UUID) -> None:
    """Wait for the patient's row lock and hold it until the transaction ends (PostgreSQL; SQLite's write
    lock is held from BEGIN already). Statements after it see what the previous holder committed.

    FOR NO KEY UPDATE, not FOR UPDATE: a request that has already inserted a row referencing the patient
    (its Idempotency-Key, an entry) holds a KEY SHARE lock on it, which FOR UPDATE conflicts with, so two
    such requests would deadlock; two NO KEY UPDATE locks still exclude each other."""
    session.execute(select(Patient.id).where(Patient.id == patient_id).with_for_update(key_share=True))
