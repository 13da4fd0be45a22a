"""Shared data for the dissection tests."""

from __future__ import annotations

import socket

import pytest

from tests.helpers import make_probe


@pytest.fixture
def probe():
    return make_probe()


@pytest.fixture
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
