"""Requesting emergency access: the confirmation is enforced by the server, a retried request with its
Idempotency-Key is granted once, and a refused request page keeps everything but the password."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from renkei.access.models import BreakGlassGrant
from tests.access.support import Ctx
from tests.factories import PASSWORD

LOOKUP = {"name_kana": "ヤマダ ハナコ", "birth_date": "1938-04-02"}
REQUEST = {"reason_code": "unconscious", "reason": "路上で倒れていた方、家族に連絡つかず", "password": PASSWORD,
           "confirm": True}


@pytest.fixture
def ctx(client, db, settings, keyring, world) -> Ctx:
    return Ctx(client, db, settings, keyring, world)


@pytest.fixture
def er(ctx) -> dict[str, str]:
    headers = ctx.headers(ctx.er_physician)
    assert ctx.client.post("/api/v1/patients/lookup", headers=headers, json=LOOKUP).json()
    return headers


def _grants(ctx: Ctx) -> int:
    return ctx.db.scalar(select(func.count()).select_from(BreakGlassGrant))


@pytest.mark.parametrize("confirm", [False, None], ids=["unchecked", "missing"])
def test_the_api_refuses_a_request_without_the_confirmation(ctx, er, confirm):
    body = {k: v for k, v in REQUEST.items() if k != "confirm"}
    if confirm is not None:
        body["confirm"] = confirm
    r = ctx.client.post(f"/api/v1/patients/{ctx.patient_id}/break-glass", headers=er, json=body)
    assert r.status_code == 422
    assert [f["path"] for f in r.json()["fields"]] == ["/confirm"]
    assert _grants(ctx) == 0


def test_the_page_refuses_a_request_without_the_checkbox_and_keeps_the_form(ctx, er):
    form = LOOKUP | {k: v for k, v in REQUEST.items() if k != "confirm"}
    r = ctx.client.post(f"/patients/{ctx.patient_id}/break-glass", headers=er, data=form)
    assert r.status_code == 422 and _grants(ctx) == 0
    assert 'id="bg-' in r.text and "救急対応のために必要であることを確認し、チェックしてください" in r.text
    assert REQUEST["reason"] in r.text


def test_a_wrong_password_shows_the_results_the_lookup_and_the_reason_again_but_never_the_password(ctx, er):
    wrong = "wrong-password-typed-9"
    r = ctx.client.post(f"/patients/{ctx.patient_id}/break-glass", headers=er,
                        data=LOOKUP | REQUEST | {"confirm": "yes", "password": wrong})
    assert r.status_code == 403 and _grants(ctx) == 0
    text = r.text
    assert f'action="/patients/{ctx.patient_id}/break-glass"' in text, "the search result is gone"
    assert 'value="ヤマダ ハナコ"' in text and 'value="1938-04-02"' in text
    assert REQUEST["reason"] in text and 'value="unconscious" selected' in text
    assert wrong not in text and PASSWORD not in text
    # The message sits next to the password field, in Japanese, without a JSON pointer.
    pid = ctx.patient_id
    assert f'id="bg-{pid}-password-err"' in text and "パスワードが正しくありません" in text
    assert "<code>/password</code>" not in text
    ctx.client.cookies.set("lang", "en")
    english = ctx.client.post(f"/patients/{pid}/break-glass", headers=er,
                              data=LOOKUP | REQUEST | {"confirm": "yes", "password": wrong})
    assert "The password is incorrect" in english.text


def test_a_request_retried_with_its_key_is_granted_once(ctx, er):
    headers = er | {"Idempotency-Key": "er-tablet-0001"}
    path = f"/api/v1/patients/{ctx.patient_id}/break-glass"
    first = ctx.client.post(path, headers=headers, json=REQUEST)
    again = ctx.client.post(path, headers=headers, json=REQUEST)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    assert _grants(ctx) == 1
    # Without the key it is a new request: access is granted already.
    assert ctx.client.post(path, headers=er, json=REQUEST).status_code == 409


def test_a_key_without_a_prior_lookup_is_refused_like_any_request(ctx):
    outsider = ctx.headers(ctx.world.outsider)
    r = ctx.client.post(f"/api/v1/patients/{ctx.patient_id}/break-glass",
                        headers=outsider | {"Idempotency-Key": "k-1"}, json=REQUEST)
    assert r.status_code == 404 and "山田" not in r.text
