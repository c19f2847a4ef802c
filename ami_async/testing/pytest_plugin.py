"""pytest plugin (registered through the ``pytest11`` entry point): test against a fake PBX.

Fixtures:

* ``fake_asterisk``: a running `FakeAsterisk` on
  127.0.0.1 (a free port), closed after the test. ``@pytest.mark.fake_asterisk(**kwargs)``
  passes keyword arguments to it (``command_format="legacy"``, ``users=...``).
* ``ami_client``: a `Client` logged in to ``fake_asterisk``
  (no keepalive), closed after the test. ``@pytest.mark.ami_client(**kwargs)``
  passes keyword arguments to it (``events="call"``, ``auth="md5"``...).

The fixtures are async and need ``pytest-asyncio`` (any mode); without it they
fail with a message that says so, and nothing else of the test run is affected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..client import Client
    from ._server import FakeAsterisk

__all__ = ["ami_client", "fake_asterisk"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fake_asterisk(**kwargs): keyword arguments for the fake_asterisk fixture"
    )
    config.addinivalue_line(
        "markers", "ami_client(**kwargs): keyword arguments for the ami_client fixture"
    )


def _marker_kwargs(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    marker = request.node.get_closest_marker(name)
    return dict(marker.kwargs) if marker is not None else {}


async def _fake_asterisk(request: pytest.FixtureRequest) -> AsyncIterator[FakeAsterisk]:
    from ._server import FakeAsterisk

    options: dict[str, Any] = {"auth_failure_delay": 0.05}
    options.update(_marker_kwargs(request, "fake_asterisk"))
    async with FakeAsterisk(**options) as pbx:
        yield pbx


async def _ami_client(
    request: pytest.FixtureRequest, fake_asterisk: FakeAsterisk
) -> AsyncIterator[Client]:
    from ..client import Client

    username, secret = next(iter(fake_asterisk.users.items()))
    options: dict[str, Any] = {"ping_interval": None, "timeout": 5.0, "action_timeout": 10.0}
    options.update(_marker_kwargs(request, "ami_client"))
    client = Client(
        fake_asterisk.host, fake_asterisk.port, username=username, secret=secret, **options
    )
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


fake_asterisk: Any
ami_client: Any

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised only without pytest-asyncio

    def _missing(*args: object, **kwargs: object) -> None:
        pytest.fail(
            "the ami_async fixtures fake_asterisk and ami_client are async and need "
            "the pytest-asyncio plugin: pip install pytest-asyncio",
            pytrace=False,
        )

    fake_asterisk = pytest.fixture(name="fake_asterisk")(_missing)
    ami_client = pytest.fixture(name="ami_client")(_missing)
else:
    fake_asterisk = pytest_asyncio.fixture(name="fake_asterisk")(_fake_asterisk)
    ami_client = pytest_asyncio.fixture(name="ami_client")(_ami_client)
