"""The response to a post shows what it stored without reading back what the request knows is not there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event

from tests.timeline.support import amend, png_bytes, posted, upload


@pytest.fixture
def statements(connection) -> Iterator[list[str]]:
    """The SQL the application runs on the test's connection from now on."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    yield seen
    event.remove(connection, "before_cursor_execute", record)


def _reads_of(statements: list[str], table: str) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("SELECT") and f"FROM {table}" in s]


def test_a_plain_message_post_reads_back_no_addressees_and_no_files(client, world, as_user, statements):
    entry = posted(client, as_user(world.nurse), world.patient_id, "message", {"text": "訪問時間の変更"})
    assert entry["recipients"] == [] and entry["attachments"] == []
    assert _reads_of(statements, "entry_recipient") == []
    assert _reads_of(statements, "entry_attachment") == []


def test_a_post_with_an_addressee_and_a_file_shows_both(client, world, as_user, statements):
    nurse = as_user(world.nurse)
    r = upload(client, nurse, world.patient_id, "message", png_bytes(), "IMG_0102.png")
    assert r.status_code == 201, r.text
    entry = posted(client, nurse, world.patient_id, "message", {"text": "写真を送ります"},
                   recipients=[{"user_id": str(world.physician.id)}], attachment_ids=[r.json()["id"]])
    assert [x["user_id"] for x in entry["recipients"]] == [str(world.physician.id)]
    assert [a["id"] for a in entry["attachments"]] == [r.json()["id"]]


def test_an_amendment_keeps_and_shows_the_addressees_of_the_version_it_replaces(client, world, as_user):
    nurse = as_user(world.nurse)
    entry = posted(client, nurse, world.patient_id, "message", {"text": "明日の訪問"},
                   recipients=[{"user_id": str(world.physician.id)}])
    r = amend(client, nurse, entry, {"text": "明後日の訪問"}, reason="日付の誤り")
    assert r.status_code == 201, r.text
    assert [x["user_id"] for x in r.json()["recipients"]] == [str(world.physician.id)]
