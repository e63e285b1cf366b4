"""Where CDR documents come from: CouchDB _changes, replay files, demo."""
