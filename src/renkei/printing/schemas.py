"""Paper-intake API models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from renkei.web.schemas import ResponseModel


class PaperIntakeOut(ResponseModel):
    """A filed paper form: a record awaiting (or done with) transcription, or a signed consent form kept with
    the consent version it was printed for."""

    id: uuid.UUID | None  # the intake (records); a consent form is kept as the consent's document instead
    kind: Literal["record", "consent_document"] = "record"
    patient_id: uuid.UUID
    sheet: str  # the printed form: a sheet id, or consent / consent-withdrawal
    sheet_version: int
    print_id: uuid.UUID
    attachment_id: uuid.UUID | None = None
    entry_id: uuid.UUID | None = None  # the paper entry on the timeline (紙・転記待ち)
    status: str  # awaiting_transcription | transcribed | withdrawn | filed_with_consent
    transcribed_entry_id: uuid.UUID | None = None
    consent_id: uuid.UUID | None = None
    consent_version: int | None = None
    document_id: uuid.UUID | None = None
    uploaded_at: datetime
    uploaded_by: uuid.UUID | None = None
    notified: int = 0
