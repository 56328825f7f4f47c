"""The patient row as the lock under which changes of one patient's shared state take turns."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.db.locking import locked
from renkei.patients.models import Patient


def lock_patient(session: Session, patient_id: uuid.UUID) -> None:
    """Wait for the patient's row lock and hold it until the transaction ends (`db.locking`); statements after
    it see what the previous holder committed."""
    session.execute(locked(select(Patient.id).where(Patient.id == patient_id)))
