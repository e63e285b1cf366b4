"""Fixtures of the integration tests: `sixminutes serve` as a real subprocess.

tests/conftest.py (the pouchdb fixtures) applies here too; this folder is on sys.path, so
the tests import service_process directly.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service_process import ServiceProcess


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """``serve(**options)`` starts a service (see ServiceProcess) and waits until it answers;
    ``serve(start=False, ...)`` only builds it. All are stopped at teardown (SIGTERM)."""
    services: list[ServiceProcess] = []

    def make(start: bool = True, **options: Any) -> ServiceProcess:
        service = ServiceProcess(tmp_path / f"service{len(services) + 1}", **options)
        services.append(service)
        return service.start() if start else service

    yield make
    for service in services:
        service.close()


@pytest.fixture(scope="module")
def module_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServiceProcess]]:
    """Like ``serve``, for services shared by a module's tests (each test then uses labels
    of its own, e.g. a profile name, so that its totals are exact)."""
    services: list[ServiceProcess] = []

    def make(**options: Any) -> ServiceProcess:
        service = ServiceProcess(tmp_path_factory.mktemp("service"), **options)
        services.append(service)
        return service.start()

    yield make
    for service in services:
        service.close()
