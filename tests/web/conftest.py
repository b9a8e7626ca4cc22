"""The real sidecar process fixture, shared with the end-to-end tests."""

from tests.e2e.conftest import sidecar  # noqa: F401
