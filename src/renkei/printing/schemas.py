"""Paper-intake API models."""

from __future__ import annotations

import uuid
from datetime import datetime

from renkei.web.schemas import ResponseModel


class PaperIntakeOut(ResponseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    sheet: str
    sheet_version: int
    print_id: uuid.UUID
    attachment_id: uuid.UUID
    status: str
    uploaded_at: datetime
    notified: int
