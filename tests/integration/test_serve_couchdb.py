"""`sixminutes serve --couchdb URL` against a real pouchdb-server: backfill, live changes,
--since now, updates, design documents and deletions. Totals are exact: the `calls` series
summed over windows equals the number of distinct CDR documents."""
from __future__ import annotations

from service_process import Realistic, config_toml


def test_since_0_backfills_existing_docs_then_follows_live_changes(pouchdb, serve):
    db = pouchdb.new_db()
    docs = Realistic(seed=101)
    pouchdb.post_many(db, docs.docs(30))
    service = serve(couchdb=[f"{pouchdb.url}/{db}"], since="0", config=config_toml())

    service.wait_total(30)
    service.wait_caught_up(pouchdb, db)
    assert service.total() == 30

    for doc in docs.docs(12):  # one by one, as FreeSWITCH's CouchDB writes arrive
        pouchdb.put(db, doc)
    pouchdb.post_many(db, docs.docs(8))
    service.wait_total(50)
    service.wait_caught_up(pouchdb, db)
    assert service.total() == 50

    status = service.status()
    source = service.source()
    assert source["connected"] is True and source["state"] == "connected"
    assert status["accepted"] == 50 and status["rejected"] == {}
    assert status["by_source"] == {source["name"]: {"accepted": 50}}
    assert source["lag"] in (0, None)


def test_default_since_now_does_not_count_docs_that_existed_before_start(pouchdb, serve):
    db = pouchdb.new_db()
    docs = Realistic(seed=102)
    pouchdb.post_many(db, docs.docs(10))
    service = serve(couchdb=[f"{pouchdb.url}/{db}"], config=config_toml())
    # "now" becomes the database's update_seq on connecting, so a restart can resume from it
    assert service.source()["position"] in ("now", 10)
    service.wait_feed_live(pouchdb, db)  # design docs: rejected, never calls
    assert service.total() == 0

    pouchdb.post_many(db, docs.docs(5))
    service.wait_total(5)
    service.wait_caught_up(pouchdb, db)
    assert service.total() == 5
    status = service.status()
    assert status["accepted"] == 5 and list(status["rejected"]) == ["design_doc"]


def test_update_is_not_counted_twice_design_doc_and_deletion_are_rejected(pouchdb, serve):
    db = pouchdb.new_db()
    docs = Realistic(seed=103).docs(10)
    service = serve(couchdb=[f"{pouchdb.url}/{db}"], since="0", config=config_toml())
    revs = {}
    for doc in docs:
        revs[doc["_id"]] = pouchdb.put(db, doc)["rev"]
    service.wait_total(10)

    # Three documents come again with a new _rev (an update), one of them twice.
    for doc in docs[:3]:
        doc["_rev"] = revs[doc["_id"]]
        doc["variables"]["sixminutes_note"] = "edited"
        revs[doc["_id"]] = pouchdb.put(db, doc)["rev"]
    docs[0]["_rev"] = revs[docs[0]["_id"]]
    docs[0]["variables"]["sixminutes_note"] = "edited again"
    pouchdb.put(db, docs[0])
    # A design document (CouchDB views) and a deletion travel in the same feed.
    pouchdb.put(db, {"_id": "_design/cdrs", "views": {"by_profile": {
        "map": "function (doc) { emit(doc.variables.ccnq_profile, 1) }"}}})
    pouchdb.delete(db, docs[9]["_id"])

    service.wait_caught_up(pouchdb, db)
    assert service.total() == 10
    status = service.status()
    name = service.source()["name"]
    assert status["accepted"] == 10
    assert status["rejected"] == {"duplicate": 4, "design_doc": 1, "deleted": 1}
    assert status["by_source"] == {name: {"accepted": 10, "duplicate": 4, "design_doc": 1,
                                          "deleted": 1}}
    assert "_design/cdrs" in status["last_rejection"]["design_doc"]
    assert docs[9]["_id"] in status["last_rejection"]["deleted"]


BATCH_SIZE_PLUGIN = '''
import numpy as np
from sixminutes.series import Series

SERIES = [Series("batch_size", value=lambda b: np.full(b.n, b.n), labels=())]
'''


def test_a_catch_up_is_counted_in_batches_exactly(pouchdb, serve, tmp_path):
    """Rows that wait are counted together (the follower reads ahead of the engine), and
    nothing is lost or counted twice on the way."""
    db = pouchdb.new_db()
    docs = Realistic(seed=104)
    pouchdb.post_many(db, docs.docs(600))
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "batch_size.py").write_text(BATCH_SIZE_PLUGIN)
    service = serve(couchdb=[f"{pouchdb.url}/{db}"], since="0", config=config_toml(),
                    args=["--plugins", str(plugins)])
    service.wait_total(600)
    service.wait_caught_up(pouchdb, db)
    assert service.total() == 600 and service.status()["rejected"] == {}
    largest = max(stat["max"] for window in service.data({"name": "batch_size"}).values()
                  for stat in window.values())
    assert largest > 1, "every row was counted alone"
