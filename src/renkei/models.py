"""Every table model, imported in one place for Alembic and the migration drift test."""

from sqlmodel import SQLModel

from renkei.auth import models as auth_models  # noqa: F401
from renkei.directory import models as directory_models  # noqa: F401
from renkei.patients import models as patient_models  # noqa: F401

metadata = SQLModel.metadata
