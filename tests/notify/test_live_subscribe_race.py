"""A sign-in that ends between redeeming the ticket and subscribing closes the socket with 4403."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from renkei.app import create_app
from renkei.auth import service as auth_service
from renkei.notify import live as live_module
from tests.notify import live


def test_a_session_ended_while_the_socket_subscribes_gets_session_ended_not_a_broken_close(tmp_path,
                                                                                          monkeypatch):
    with live.database(tmp_path) as url:
        settings = live.settings_for(tmp_path, url).model_copy(
            update={"allowed_origins": [live.ORIGIN], "notify_poll_seconds": 30})
        deployment = live.seed(settings)
        headers = deployment.as_user(deployment.world.nurse)
        real = live_module._session_and_head

        def logged_out_meanwhile(session, *, settings, session_id):
            # The logout lands after the ticket was redeemed and before the socket's first check.
            with live.committing(settings) as other:
                auth_service.revoke_session(other, session_id, reason="logout")
            return real(session, settings=settings, session_id=session_id)

        monkeypatch.setattr(live_module, "_session_and_head", logged_out_meanwhile)
        with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
            ticket = client.post("/api/v1/ws-ticket", headers=headers).json()["ticket"]
            with client.websocket_connect("/ws", headers={"origin": live.ORIGIN}) as ws:
                ws.send_json({"type": "auth", "ticket": ticket})
                with pytest.raises(WebSocketDisconnect) as closed:
                    ws.receive_text()
    assert closed.value.code == 4403 and closed.value.reason == "session_ended"
