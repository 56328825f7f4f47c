"""Helpers for the timeline tests: example sheet data without references, posting through the API."""

from __future__ import annotations

import copy
import io
import uuid
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session

from renkei.db.types import today_jst
from renkei.directory.models import Organisation, User
from renkei.patients import service as patient_service
from renkei.patients.schemas import MembershipIn
from tests.factories import actor_of, make_user
from tests.sheets.examples import EXAMPLES

def example(sheet: str, **changes: Any) -> dict[str, Any]:
    """A realistic payload of the sheet, without ids of attachments or entries that do not exist here."""
    data = copy.deepcopy(EXAMPLES[sheet])
    _drop_references(data)
    data.update(changes)
    return data

def _drop_references(node: Any) -> None:
    if isinstance(node, dict):
        for key in [k for k in node if k.endswith(("attachment_ids", "entry_id"))]:
            del node[key]
        for value in node.values():
            _drop_references(value)
    elif isinstance(node, list):
        for item in node:
            _drop_references(item)


def post(client: TestClient, headers: dict[str, str], patient_id: uuid.UUID, sheet: str,
         data: dict[str, Any] | None = None, **body: Any):
    """POST an entry; returns the response."""
    payload = {"sheet": sheet, "version": 1, "data": example(sheet) if data is None else data, **body}
    return client.post(f"/api/v1/patients/{patient_id}/entries", json=payload, headers=headers)


def posted(client: TestClient, headers: dict[str, str], patient_id: uuid.UUID, sheet: str,
           data: dict[str, Any] | None = None, **body: Any) -> dict[str, Any]:
    """POST an entry that must succeed; returns its JSON."""
    r = post(client, headers, patient_id, sheet, data, **body)
    assert r.status_code == 201, r.text
    return r.json()


def etag_of(entry: dict[str, Any]) -> str:
    """The ETag of an entry's JSON, for If-Match."""
    return f'"{entry["version"]}.{entry["revision"]}"'


def amend(client: TestClient, headers: dict[str, str], entry: dict[str, Any], data: dict[str, Any],
          reason: str = "訂正", **body: Any):
    """POST an amendment of `entry` with its ETag in If-Match; returns the response."""
    return client.post(f"/api/v1/entries/{entry['id']}/amend",
                       headers={**headers, "If-Match": etag_of(entry)},
                       json={"data": data, "reason": reason, **body})


def join_team(db: Session, patient_id: uuid.UUID, by: User, org: Organisation, *, profession: str,
              team_role: str, name: str = "試験 職員") -> User:
    """A new professional of `org` added to the patient's care team today."""
    user = make_user(db, org, profession=profession, name=name)
    patient_service.add_member(db, actor=actor_of(by), patient_id=patient_id,
                               data=MembershipIn(user_id=user.id, team_role=team_role, start_date=today_jst()))
    return user


def png_bytes(size: tuple[int, int] = (8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 120, 80)).save(out, "PNG")
    return out.getvalue()


def upload(client: TestClient, headers: dict[str, str], patient_id: uuid.UUID, sheet: str, content: bytes,
           filename: str = "photo.png", **extra_headers: str):
    """POST a file as multipart; returns the response."""
    return client.post(f"/api/v1/patients/{patient_id}/attachments", headers={**headers, **extra_headers},
                       data={"sheet": sheet}, files={"file": (filename, content, "application/octet-stream")})
