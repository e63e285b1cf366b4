"""The live service's HTTP edge: request bodies, Server-Sent Events, routes.

Modules here that do not need Starlette (`body`) stay importable without it, because the replay
inputs (`sixminutes.sources.files`) share the POST-body decoding with the HTTP ingest.
"""
