"""The ``sixminutes`` command."""
from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import shlex
import sys
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Iterator, NoReturn, Sequence

import orjson

from . import __version__, parallel
from .config import Config, ConfigError, check_hours
from .engine import Engine
from .heap import fewer_collections, keep_freed_memory
from .incidents import carriers
from .report import all_rejections, where_rejected, write_report
from .sources import csv_cdr
from .sources.files import InputError, read_documents, total_bytes
from .sources.reading import Reading, ReadOptions
from .state import State, StateError

if TYPE_CHECKING:  # (serve and synth import what only they use: a replay starts sooner)
    from .web.token import Token

__all__ = ["main", "run"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sixminutes",
        description="Real-time troubleshooting monitor for VoIP carriers running FreeSWITCH: "
                    "CDRs into 6-minute windows, KPIs per carrier and account, alerts.")
    parser.add_argument("--version", action="version", version=f"sixminutes {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay = commands.add_parser(
        "replay", help="count CDR files offline and print a report",
        description="Read FreeSWITCH CDRs from files and print, per 6-minute window and carrier "
                    "(profile × direction): calls, ASR, NER, zero-duration %, ACD, PDD, MOS and "
                    "the top SIP error codes; then the alerts; then the rejected documents by "
                    "reason, each with the file and line it was read at. Inputs: a JSON "
                    "document or array, JSON Lines, a CouchDB _changes or "
                    "_all_docs?include_docs=true dump, mod_xml_cdr XML files, mod_cdr_csv CSV "
                    "files, directories of them (log-dir or err-log-dir: *.json, *.xml, *.csv); "
                    "any of them gzip-compressed. Windows are never purged in a replay. "
                    "Exit status: 0 when every input was read to its end (rejected documents "
                    "are counted and reported, not errors); 1 when a file could not be read "
                    "whole (unreadable, compressed data truncated or corrupt, content in no "
                    "known format): it is named in the report and on stderr, and what it held "
                    "before the damage is counted; 2 when nothing was counted (a bad flag or "
                    "config, a path that does not exist).")
    replay.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to read")
    replay.add_argument("--json", action="store_true",
                        help='print one JSON object {"data", "alerts", "incidents", '
                             '"carrier_incidents", "rejected", '
                             '"where_rejected", "rejections", "problems"} instead of the report; '
                             "data is exactly GET /6minutes/data's document; rejected counts by "
                             "reason, where_rejected the first and last place of each, "
                             "rejections each rejected record or document with where it was "
                             "read (the first 1000 of each reason), problems each "
                             "file not read to its end")
    replay.add_argument("--config", metavar="FILE",
                        help="TOML configuration (plugins, rules); also $SIXMINUTES_CONFIG")
    replay.add_argument("--plugins", metavar="DIR", action="append", default=[],
                        help="a directory of plugin files, loaded after the built-ins "
                             "(repeatable; a file named like a built-in replaces it)")
    replay.add_argument("--disable", metavar="NAME", action="append", default=[],
                        help="do not load the plugin NAME (a file stem, e.g. accounts; repeatable)")
    replay.add_argument("--no-progress", action="store_true",
                        help="no progress bar on stderr (it only shows on a terminal anyway)")
    replay.add_argument("--max-alerts", type=int, default=100, metavar="N",
                        help="alerts listed in the report (default 100; --json lists all)")
    replay.add_argument("--csv-template", default="example", metavar="NAME",
                        help="the cdr_csv.conf.xml template mod_cdr_csv wrote the CSV files with "
                             f"(default example, FreeSWITCH's; one of {', '.join(csv_cdr.TEMPLATES)})")
    replay.add_argument("--csv-columns", metavar="A,B,...",
                        help="the CSV columns as channel variable names, for a template of your "
                             "own (e.g. uuid,sip_gateway_name,direction,end_stamp,billsec; '-' "
                             "skips a column); instead of --csv-template")
    replay.add_argument("--timezone", metavar="ZONE",
                        help="the zone of the CSV files' local stamps, e.g. Europe/Paris "
                             "(default: this machine's)")
    replay.add_argument("--jobs", type=int, default=0, metavar="N",
                        help="count in N processes, each taking whole windows (default 0: one "
                             "per CPU). The result is the same, except for a plugin that "
                             "keeps its own state across windows (it sees only its share) or "
                             "starts processes of its own")

    synth = commands.add_parser(
        "synth", help="write synthetic FreeSWITCH CDRs (JSON Lines) to try things with",
        description="Write realistic synthetic mod_json_cdr documents as JSON Lines (gzip when "
                    "the file name ends in .gz), ending over the last HOURS hours: 20 carriers, "
                    "thousands of accounts, one carrier in trouble (503s, zero-duration calls).")
    synth.add_argument("--out", metavar="FILE", default="-", help="output file (default stdout)")
    synth.add_argument("--count", type=int, default=2000, metavar="N", help="CDRs (default 2000)")
    synth.add_argument("--hours", type=float, default=2.0, help="time span (default 2)")
    synth.add_argument("--seed", type=int, default=1, help="random seed (default 1)")

    serve = commands.add_parser(
        "serve", help="run the live service (CouchDB follower, HTTP ingest, API, live events)",
        description="Run the live service: follow CouchDB _changes feeds and/or take "
                    "FreeSWITCH mod_json_cdr or mod_xml_cdr POSTs on /6minutes/cdr, keep the "
                    "last 24 hours of 6-minute windows in a SQLite state file (one process "
                    "per file: a second one is refused), and serve /6minutes (page), "
                    "/6minutes/data, /6minutes/alerts, /6minutes/status, /6minutes/events "
                    "(SSE) and /metrics; push alerts that fire and resolve to Alertmanager "
                    "and webhooks. Settings come from --config, then SIXMINUTES_* "
                    "variables, then these flags.")
    serve.add_argument("--config", metavar="FILE", help="TOML configuration; also $SIXMINUTES_CONFIG")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 for "
                                      "every address: changes still need the token)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8360)")
    serve.add_argument("--state", metavar="PATH",
                       help="SQLite state file: windows, alerts, positions, ingest journal "
                            "(default sixminutes.sqlite)")
    serve.add_argument("--couchdb", metavar="URL", action="append",
                       help="a CouchDB database to follow, e.g. http://user:pass@host:5984/cdrs "
                            "(repeatable; credentials never appear in logs or status)")
    serve.add_argument("--since", metavar="SEQ",
                       help="where to start a CouchDB feed with no saved position: now "
                            "(default, as the seed did), 0 (backfill everything) or a sequence")
    serve.add_argument("--plugins", metavar="DIR", action="append", default=[],
                       help="a directory of plugin files, loaded after the built-ins (repeatable)")
    serve.add_argument("--disable", metavar="NAME", action="append", default=[],
                       help="do not load the plugin NAME (repeatable)")
    serve.add_argument("--token", help="the token every change needs (POST /6minutes/cdr, "
                                       "DELETE, POST /6minutes/restart): Authorization: Bearer, "
                                       "or HTTP Basic with it as password. Default: generated at "
                                       "first start and kept beside the state file in "
                                       "STATE.token (mode 0600); the log says where, and prints "
                                       "the page's one-time link")
    serve.add_argument("--auth-reads", action="store_true", default=None,
                       help="reads need the token too: /6minutes/data, alerts, status, "
                            "rejected, events (there also as ?token=, for the page's "
                            "EventSource) and /metrics; the page's HTML and scripts hold no "
                            "data and stay open")
    serve.add_argument("--allow-host", metavar="NAME", action="append",
                       help="also answer requests for the host name NAME (repeatable; * for "
                            "any). By default only localhost, the --host address (any IP "
                            "address with 0.0.0.0) and the --public-url host are answered; "
                            "other names get 421, against DNS rebinding")
    serve.add_argument("--allow-origin", metavar="ORIGIN", action="append",
                       help="also accept changes (POST, DELETE) sent by web pages of ORIGIN, "
                            "e.g. https://noc.example.net (repeatable); those of any other "
                            "site are refused with 403, token or not")
    serve.add_argument("--retention-hours", type=float, metavar="H",
                       help="hours of windows kept (default 24)")
    serve.add_argument("--demo", action="store_true",
                       help="generate synthetic FreeSWITCH CDRs of twenty carriers, one in "
                            "trouble (kestrel, a tenth of the calls), fed through the same path "
                            "as POSTed CDRs")
    serve.add_argument("--demo-rate", type=float, metavar="N",
                       help="demo CDRs per second (default 4)")
    serve.add_argument("--alertmanager", metavar="URL", action="append",
                       help="an Alertmanager to push firing and resolved alerts to, e.g. "
                            "http://alertmanager:9093 (API v2; repeatable)")
    serve.add_argument("--webhook", metavar="URL", action="append",
                       help="a URL to POST each alert that fires or resolves to, as JSON "
                            "(repeatable)")
    serve.add_argument("--webhook-secret", metavar="SECRET",
                       help="sign webhooks: X-Sixminutes-Signature: sha256=<HMAC of "
                            "'<X-Sixminutes-Timestamp>.<body>'>")
    serve.add_argument("--public-url", metavar="URL",
                       help="this service's address as people reach it, for the links in "
                            "notifications and in the start-up log (default "
                            "http://HOST:PORT); its host is answered and its origin trusted")
    serve.add_argument("--nats", metavar="URL", action="append",
                       help="join a group of instances on this NATS JetStream cluster "
                            "(repeatable: its seed servers); the stream becomes the durable "
                            "log and every instance shows the whole group (docs/scale-out.md)")
    serve.add_argument("--group", metavar="NAME",
                       help="the group to join with --nats (default sixminutes)")
    serve.add_argument("--log-level", default="info",
                       choices=["debug", "info", "warning", "error"], help="default info")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "synth":
            return _synth(args)
        with fewer_collections():
            return _replay(args)
    except (InputError, ConfigError, StateError) as error:
        print(f"sixminutes: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `sixminutes replay … | head`
        return 0


def run() -> NoReturn:
    """The console script: :func:`main`, then the exit status.

    A replay's (or synth's) process is the command's alone: it keeps the memory it frees
    for its next batches (:func:`~sixminutes.heap.keep_freed_memory`), and it ends at once
    (``os._exit``) where Python would first free the store's objects one by one, ~0.05 s
    after a day of CDRs, to give back memory the system takes back anyway. Nothing is left
    undone by then: the outputs are flushed here, the worker processes joined, and no other
    thread runs. ``serve`` ends the usual way (its libraries' exit handlers run)."""
    argv = sys.argv[1:]
    if next((arg for arg in argv if not arg.startswith("-")), None) == "serve":
        sys.exit(main(argv))
    keep_freed_memory()
    code = main(argv)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # `… | head`; a closed stream
            pass
    os._exit(code)


def _progress_bar(size: int, off: bool) -> Any:
    """tqdm's bar of the bytes read, on a terminal; else nothing (tqdm not even imported)."""
    if off or not sys.stderr.isatty():
        return contextlib.nullcontext(SimpleNamespace(update=lambda n: None))
    from tqdm import tqdm
    tqdm.monitor_interval = 0  # no monitor thread: the other processes can then be forked
    return tqdm(total=size, unit="B", unit_scale=True, file=sys.stderr, desc="reading", delay=0.5)


def _replay(args: argparse.Namespace) -> int:
    config = Config.load(args.config)
    config.retention_hours = None
    config.plugin_dirs += args.plugins
    config.disabled += args.disable
    if args.jobs < 0:
        raise ConfigError(f"--jobs must be 0 (one per CPU) or more, not {args.jobs}")
    if args.max_alerts < 0:
        raise ConfigError(f"--max-alerts must be 0 or more, not {args.max_alerts}")
    jobs = args.jobs if args.jobs > 0 else (os.cpu_count() or 1)
    try:
        engine = Engine(config)
    except ValueError as error:  # a bad rule in the config
        raise ConfigError(str(error)) from None
    engine.hold_resolution = True  # alerts are resolved once, by settle(), at the end
    engine.keep_rejections = True  # the report says where each rejected document was read
    options = _read_options(args)
    size = total_bytes(args.paths)
    with _progress_bar(size, args.no_progress) as bar:
        reading = Reading(bar.update, options)
        if jobs > 1:  # the other processes read the inputs again: the options go with them
            with _environment(options.to_env()):
                engine = parallel.replay(args.paths, config, jobs, progress=reading)
        else:
            engine.feed_many(read_documents(args.paths, progress=reading, chunks=True))
    for reason, count in reading.counts().items():  # what the reader could not use counts too
        engine.outcomes[("replay", reason)] += count
    engine.flush()
    engine.settle()
    engine.store.compact()
    if args.json:
        incidents = engine.alerts.incidents()
        rest = {"alerts": engine.alerts.to_json(),
                "incidents": [i.to_json() for i in incidents],
                "carrier_incidents": carriers(incidents),
                "rejected": dict(engine.rejected),
                "where_rejected": where_rejected(engine, reading),
                "rejections": [r.to_json() for r in all_rejections(engine, reading)],
                "problems": [p.to_json() for p in reading.problems]}
        out = sys.stdout.buffer  # {"data": the store, written a window at a time, then the rest}
        out.write(b'{"data":')
        engine.store.write_json(out.write)
        out.write(b"," + orjson.dumps(rest, option=orjson.OPT_NON_STR_KEYS)[1:] + b"\n")
    else:
        write_report(engine, sys.stdout, args.max_alerts, reading)
    for error in engine.plugins.errors:
        print(f"sixminutes: plugin not loaded: {error}", file=sys.stderr)
    for problem in reading.problems:
        print(f"sixminutes: {problem.path}: {problem.reason}: {problem.detail}", file=sys.stderr)
    return 1 if reading.problems else 0


def _read_options(args: argparse.Namespace) -> ReadOptions:
    """The CSV options, checked before anything is read."""
    columns = tuple(args.csv_columns.split(",")) if args.csv_columns else None
    try:
        csv_cdr.layout(args.csv_template, columns, args.timezone)
    except ValueError as error:
        flag = ("--timezone" if "time zone" in str(error) else
                "--csv-columns" if columns is not None else "--csv-template")
        raise ConfigError(f"{flag}: {error}") from None
    return ReadOptions(csv_columns=columns, csv_template=args.csv_template, timezone=args.timezone)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the processes started inside, then put them back."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_EVERY_ADDRESS = ("", "0.0.0.0", "::")


def _url_host(host: str) -> str:
    """A listening address as a URL's host: 127.0.0.1 for every address, IPv6 in brackets."""
    host = "127.0.0.1" if host in _EVERY_ADDRESS else host
    return f"[{host}]" if ":" in host else host


def _token_usage(config: Config, token: Token) -> list[str]:
    """What the start-up log says about the token: where it is, the page's one-time link, a
    curl example. A configured token is never written out (its owner knows it); a generated
    one is, since the operator needs it: the log goes where the service's own output goes."""
    base = (config.public_url or f"http://{_url_host(config.host)}:{config.port}").rstrip("/")
    lines = []
    if token.origin == "configured":
        secret = "$TOKEN"
        lines.append(f"open {base}/6minutes/#token=<the token> (the configured token; "
                     "the page asks for it otherwise)")
    else:
        secret = f"$(cat {shlex.quote(str(token.path))})" if token.path else token.value
        where = {"created": f"generated now and kept in {token.path} (mode 0600)",
                 "reused": f"kept in {token.path}",
                 "process": "generated for this process only (in-memory state)"}[token.origin]
        lines.append(f"the token is {where}; every change needs it")
        lines.append(f"open {base}/6minutes/#token={token.value}")
    lines.append(f'e.g. curl -X DELETE -H "Authorization: Bearer {secret}" {base}/6minutes/alerts'
                 "  (FreeSWITCH mod_json_cdr: cred = freeswitch:<the token>)")
    if config.host not in _LOOPBACK:
        reads = ("reads need it too (auth_reads)" if config.auth_reads else
                 "reads are open to whoever reaches the port (--auth-reads closes them)")
        lines.append(f"listening on {config.host}, beyond this machine: every change needs "
                     f"the token; {reads}")
    return lines


def _serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from .service import Service
    from .web.app import create_app
    from .web.token import TokenError, resolve_token

    config = Config.load(args.config)
    for name in ("host", "port", "state", "since", "token", "demo_rate", "webhook_secret",
                 "public_url", "group"):
        value = getattr(args, name)
        if value is not None:
            config.set(name, value, f"--{name.replace('_', '-')}")
    for name in ("couchdb", "alertmanager", "webhook", "nats"):  # (repeatable: the flags replace)
        if getattr(args, name):
            config.set(name, getattr(args, name), f"--{name}")
    if args.allow_host:
        config.allowed_hosts = args.allow_host
    if args.allow_origin:
        config.allowed_origins = args.allow_origin
    if args.auth_reads:
        config.auth_reads = True
    if args.demo:
        config.demo = True
    if args.retention_hours is not None:
        config.retention_hours = check_hours(args.retention_hours, "--retention-hours")
    config.plugin_dirs += args.plugins
    config.disabled += args.disable
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every request's whole URL
    state = State(config.state)  # first: a file another process owns is refused at once
    try:
        token = resolve_token(config.token, config.state)
    except TokenError as error:
        raise ConfigError(str(error)) from None
    config.token = token.value
    try:
        service = Service(config)
    except ValueError as error:  # a bad rule in the config
        raise ConfigError(str(error)) from None
    service.state = state
    service.freeze_heap = True  # (a process of its own: see Service._freeze)
    try:
        app = create_app(service)
    except ValueError as error:  # e.g. an allowed origin that is not one
        raise ConfigError(str(error)) from None
    print(f"sixminutes: serving http://{_url_host(config.host)}:{config.port}/6minutes "
          f"(state {config.state})", file=sys.stderr, flush=True)
    for line in _token_usage(config, token):
        print(f"sixminutes: {line}", file=sys.stderr, flush=True)
    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            service.hub.close()  # end live-event streams now, or shutdown waits for them
            super().handle_exit(sig, frame)

    try:  # (a response of known length in one write: web/server.py)
        from .web.server import OneWriteProtocol
        http: Any = OneWriteProtocol
    except ImportError:  # without httptools: uvicorn's own choice
        http = "auto"
    server = Server(uvicorn.Config(app, host=config.host, port=config.port, http=http,
                                   log_level=args.log_level, access_log=False,
                                   timeout_graceful_shutdown=5))
    server.run()
    return 0 if server.started else 1


def _synth(args: argparse.Namespace) -> int:
    if args.count < 0:
        raise ConfigError(f"--count must be 0 or more, not {args.count}")
    if not 0 < args.hours <= 24 * 365:  # (nan fails too)
        raise ConfigError(f"--hours must be more than 0 and at most a year, not {args.hours}")
    span = max(int(args.hours * 3600), 1)
    from .sources.synthetic import Generator

    docs = Generator(seed=args.seed).corpus(args.count, int(time.time()) - span, span)
    try:
        out = contextlib.nullcontext(sys.stdout.buffer) if args.out == "-" else (
            gzip.open(args.out, "wb") if args.out.endswith(".gz") else open(args.out, "wb"))
    except OSError as error:
        raise InputError(f"cannot write {args.out}: {error.strerror}") from None
    with out as file:
        for raw, _truth in docs:
            file.write(raw + b"\n")
    return 0


if __name__ == "__main__":
    run()
