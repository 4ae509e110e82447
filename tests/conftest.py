import pytest


@pytest.fixture(scope="session")
def httpserver_listen_address():
    # The webhook receiver in tests listens on loopback only.
    return ("127.0.0.1", 0)
