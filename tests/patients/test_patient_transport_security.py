"""HTTP protections around patient data: no caching, TrustedHost, request body limit (413)."""

from __future__ import annotations

import json

import pytest

from tests.factories import auth_headers, patient_data


@pytest.fixture
def headers(db, settings, keyring, world):
    return auth_headers(db, settings, keyring, world.physician)


def test_every_patient_response_forbids_caching(client, db, settings, keyring, world, headers):
    pid = world.patient_id
    responses = [
        client.get("/api/v1/patients", headers=headers),
        client.get(f"/api/v1/patients/{pid}", headers=headers),
        client.get(f"/api/v1/patients/{pid}/team", headers=headers),
        client.post("/api/v1/patients/lookup", json={"insurance_number": "0000123456"}, headers=headers),
        client.post("/api/v1/patients", json=patient_data(name="新規 患者"), headers=headers),
        client.get(f"/api/v1/patients/{pid}", headers=auth_headers(db, settings, keyring, world.outsider)),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 201, 404]
    for r in responses:
        assert r.headers["cache-control"] == "no-store", r.request.url
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert len(r.headers["x-request-id"]) == 16


def test_unknown_host_is_rejected_before_any_patient_data_is_read(client, world, headers):
    r = client.get(f"/api/v1/patients/{world.patient_id}", headers={**headers, "Host": "evil.example"})
    assert r.status_code == 400
    assert "山田" not in r.text and "ヤマダ" not in r.text
    assert client.get(f"/api/v1/patients/{world.patient_id}", headers=headers).status_code == 200


def _oversized_registration(settings) -> bytes:
    body = patient_data(name="巨大 患者", address="あ" * settings.max_body_bytes)
    return json.dumps(body, ensure_ascii=False).encode()


def _my_patient_names(client, headers) -> list[str]:
    return [p["identity"]["name"] for p in client.get("/api/v1/patients", headers=headers).json()]


def test_registration_body_over_the_limit_is_refused_with_413_json(client, settings, headers):
    payload = _oversized_registration(settings)
    assert len(payload) > settings.max_body_bytes
    r = client.post("/api/v1/patients", content=payload,
                    headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json() == {"error": "payload_too_large", "detail": "Request body too large", "fields": []}
    assert r.headers["cache-control"] == "no-store"
    assert "巨大 患者" not in _my_patient_names(client, headers)


def test_streamed_body_without_content_length_is_cut_off_with_413(client, settings, headers):
    payload = _oversized_registration(settings)

    def chunks():
        for start in range(0, len(payload), 64 * 1024):
            yield payload[start : start + 64 * 1024]

    r = client.post("/api/v1/patients", content=chunks(), headers={**headers, "Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "payload_too_large"
    assert "巨大 患者" not in _my_patient_names(client, headers)


def test_body_within_the_limit_reaches_validation_without_echoing_values(client, settings, headers):
    body = patient_data(name="長い 住所", address="あ" * 301)
    r = client.post("/api/v1/patients", json=body, headers=headers)
    assert r.status_code == 422
    assert [f["path"] for f in r.json()["fields"]] == ["/address"]
    assert "あああ" not in r.text, "submitted values are never echoed in error bodies"
