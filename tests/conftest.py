"""Fixtures shared by the whole test suite."""

from hypothesis import HealthCheck, settings

# A busy machine (CI on two shared cores) makes data generation slow: no property test may
# fail for that. Each test's own max_examples still holds; wall-clock deadlines are off.
settings.register_profile("sixminutes", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("sixminutes")

from couchdb_server import _pouchdb_session, pouchdb, pouchdb_factory  # noqa: F401
