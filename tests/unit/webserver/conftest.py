"""Fixtures for the web endpoint tests (helpers live in webtest_support)."""

from __future__ import annotations

import pytest
from webtest_support import Harness, make_harness


@pytest.fixture
def harness() -> Harness:
    return make_harness()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
