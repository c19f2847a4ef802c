"""The pytest plugin's former module name, kept for `-p ami_async.pytest_plugin` users.

The plugin lives in `ami_async.testing.pytest_plugin`, which the `pytest11` entry
point loads by itself; naming this module as well registers the same fixtures again.
"""

from .testing.pytest_plugin import ami_client, fake_asterisk, pytest_configure

__all__ = ["ami_client", "fake_asterisk", "pytest_configure"]
