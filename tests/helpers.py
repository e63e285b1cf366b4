"""Hand-written minimal FreeSWITCH-like CDRs for the tests.

``cdr(**variables)`` is a document as mod_json_cdr writes it (every variable a string),
with just enough to be accepted: an ``end_epoch``. Keyword arguments override or add
variables; a value of ``None`` removes the variable. ``_id=...`` / ``_doc=...`` keys are
not variables: ``_id`` sets the document's ``_id`` and ``_doc`` adds top-level keys.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import orjson

END = 1_700_000_000  # 2023-11-14T22:13:20Z; its window starts at END - END % 360
WINDOW = END - END % 360


def cdr(_id: str | None = None, _doc: dict[str, Any] | None = None, **variables: Any) -> dict:
    """A minimal valid CDR document; variables are turned into strings as FreeSWITCH does."""
    merged: dict[str, Any] = {"end_epoch": str(END)}
    merged.update(variables)
    doc: dict[str, Any] = {}
    if _id is not None:
        doc["_id"] = _id
    doc["callflow"] = [{"profile_index": "1"}]
    doc["variables"] = {k: str(v) for k, v in merged.items() if v is not None}
    if _doc:
        doc.update(_doc)
    return doc


def raw(_id: str | None = None, _doc: dict[str, Any] | None = None, **variables: Any) -> bytes:
    """The same document as :func:`cdr`, as the JSON bytes a source hands the engine."""
    return orjson.dumps(cdr(_id, _doc, **variables))


def seed_rules_toml() -> str:
    """``[rules.*]`` tables that make every default rule fire as the seed's did (on the point
    value, in one window): for the tests of plumbing, which plant a single crossing window."""
    from sixminutes.thresholds import SEED_RULES

    return "".join(f"[rules.{name}]\n" + "".join(f"{k} = {v}\n" for k, v in table.items())
                   for name, table in SEED_RULES.items())


def builtins() -> list[str]:
    """The built-in plugins' names, in the order they load."""
    from sixminutes.plugins import BUILTIN_DIR

    return sorted(p.stem for p in BUILTIN_DIR.glob("*.py") if not p.name.startswith("_"))


def run_sanitized(module: str, script: str, tmp_path: Path, examples: int
                  ) -> subprocess.CompletedProcess:
    """Build ``sixminutes/<module>.c`` with AddressSanitizer and UBSan, and run
    ``tests/<script> SO_FILE EXAMPLES`` over it in a process of its own (the sanitizers must
    be preloaded). gcc and its sanitizer runtimes are the project's test dependencies."""
    gcc = shutil.which("gcc")
    assert gcc is not None, "gcc builds the project's C modules: install it (the README says how)"
    preload = [subprocess.run([gcc, f"-print-file-name={lib}"], capture_output=True, text=True,
                              check=True).stdout.strip() for lib in ("libasan.so", "libubsan.so")]
    assert all(os.path.isabs(lib) and os.path.exists(lib) for lib in preload), preload
    here = Path(__file__).resolve().parent
    so_file = tmp_path / (module + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run([gcc, "-shared", "-fPIC", "-O1", "-g", "-fno-omit-frame-pointer",
                    "-fsanitize=address,undefined", f"-I{sysconfig.get_paths()['include']}",
                    str(here.parent / "sixminutes" / f"{module}.c"), "-o", str(so_file)], check=True)
    env = dict(os.environ, LD_PRELOAD=":".join(preload), PYTHONMALLOC="malloc",
               ASAN_OPTIONS="detect_leaks=0", UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    return subprocess.run([sys.executable, str(here / script), str(so_file), str(examples)],
                          capture_output=True, text=True, env=env, timeout=900)
