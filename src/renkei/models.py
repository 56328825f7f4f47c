"""Every table model, imported in one place for Alembic and the migration drift test."""

from sqlmodel import SQLModel

from renkei.access import models as access_models  # noqa: F401
from renkei.audit import models as audit_models  # noqa: F401
from renkei.auth import models as auth_models  # noqa: F401
from renkei.consent import models as consent_models  # noqa: F401
from renkei.directory import models as directory_models  # noqa: F401
from renkei.idempotency import models as idempotency_models  # noqa: F401
from renkei.notify import models as notify_models  # noqa: F401
from renkei.patients import models as patient_models  # noqa: F401
from renkei.printing import models as printing_models  # noqa: F401
from renkei.timeline import models as timeline_models  # noqa: F401

metadata = SQLModel.metadata
