"""Fixtures shared by the whole test suite."""

from couchdb_server import _pouchdb_session, pouchdb, pouchdb_factory  # noqa: F401
