"""Fixtures for sign-in tests: an app built with adjusted settings, in the test's rolled-back transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from renkei.app import create_app

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def client_with(settings, connection) -> Iterator[ClientFactory]:
    """`client_with(login_max_failures=3, client=("10.0.0.2", 1234))`: a client of an app so configured."""
    opened: list[TestClient] = []

    def build(*, client: tuple[str, int] = ("testclient", 50000), **overrides: object) -> TestClient:
        app = create_app(settings.model_copy(update=overrides), bind=connection)
        test_client = TestClient(app, base_url="http://testserver", client=client)
        test_client.__enter__()
        opened.append(test_client)
        return test_client

    yield build
    for test_client in opened:
        test_client.__exit__(None, None, None)
