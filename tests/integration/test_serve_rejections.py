"""Where a live rejection came from: the status lists the newest rejections each with its
source and the CouchDB document id and sequence, or the journal row of the POST (whose body
GET /6minutes/rejected keeps)."""
from __future__ import annotations

import orjson

from service_process import config_toml, small_cdr


def test_each_rejection_names_its_couchdb_id_or_its_post(pouchdb, serve):
    db = pouchdb.new_db()
    good = small_cdr(profile="rejections")
    pouchdb.post_many(db, [good, {"_id": "no-end", "variables": {"billsec": "3"}},
                           {"_id": "no-vars", "callflow": []}])
    service = serve(couchdb=[f"{pouchdb.url}/{db}"], since="0", config=config_toml())
    service.wait_caught_up(pouchdb, db)
    response = service.post_cdr(orjson.dumps({"variables": {"end_epoch": "yesterday"}}))
    assert response.status_code == 422
    rejections = service.wait(lambda: len(service.status()["rejections"]) == 3 and
                              service.status()["rejections"], what="three rejections")
    couch = [r for r in rejections if r["source"].startswith("couchdb:")]
    assert [(r["id"], r["reason"]) for r in couch] == [("no-end", "bad_end_epoch"),
                                                       ("no-vars", "no_variables")]
    assert all(r["seq"] for r in couch)
    (http,) = [r for r in rejections if r["source"] == "http"]
    assert http["reason"] == "bad_end_epoch" and "yesterday" in http["detail"]
    assert isinstance(http["journal"], int)
    assert service.json("/6minutes/rejected")[0]["body"] == \
        '{"variables":{"end_epoch":"yesterday"}}'
