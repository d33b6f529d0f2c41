"""Say so when a first call must compile a numba kernel.

numba compiles a kernel on its first call and caches the machine code
(`cache=True`); only the first use after an install (or after the source
changed) waits.  Without a word that wait looks like a hang, so the callers
announce it once, on stderr, naming what compiles and roughly how long it
takes on a small machine.  numba's cache index file tells whether a compile
is coming; when that cannot be found (numba internals moved) nothing is said.

numba checks a cached kernel against its own source file only, yet the
kernels inline code and constants from other files (the co-simulation loop
links the PPU interpreter, which reads the instruction table's groups): a
kernel cached before such a file changed would run the old code.
`check_dependencies` keeps, beside numba's cache, a hash of every source file
of the `twin` and `isa` packages and drops every cached kernel when it differs.
"""
from __future__ import annotations

import hashlib
import pathlib
import sys

_done: set[str] = set()
_source_hash: str | None = None


def _sources_hash() -> str:
    global _source_hash
    if _source_hash is None:
        root = pathlib.Path(__file__).resolve().parents[1]
        h = hashlib.sha256()
        for pkg in ("twin", "isa"):
            for f in sorted((root / pkg).rglob("*.py")):
                h.update(str(f.relative_to(root)).encode())
                h.update(f.read_bytes())
        _source_hash = h.hexdigest()
    return _source_hash


def check_dependencies(dispatcher) -> None:
    """Once per process, before the first kernel runs: when any source file of
    `twin` or `isa` changed since the cached kernels were compiled, drop them
    all (numba's cache files of both packages), so that none runs old code
    inlined from another file.  `dispatcher` locates the cache."""
    try:
        _check(dispatcher._cache._cache_path, dispatcher.py_func)
    except AttributeError:                     # numba internals moved: nothing to check
        return


def check_dependencies_of(py_func) -> None:
    """check_dependencies for a function numba compiles as a cfunc (located
    through numba's cache for that function, without compiling it)."""
    try:
        from numba.core.caching import FunctionCache
        _check(FunctionCache(py_func)._cache_path, py_func)
    except (AttributeError, ImportError):
        return


def _check(cache_path, py_func) -> None:
    global _checked_all
    if _checked_all:
        return
    _checked_all = True
    root = pathlib.Path(__file__).resolve().parents[1]
    cache = pathlib.Path(cache_path)                                  # numba's folder for that file
    try:
        rel = pathlib.Path(py_func.__code__.co_filename).resolve().parent.relative_to(root)
    except ValueError:                         # not our file: nothing to check
        return
    in_tree = cache.name == "__pycache__"      # else under NUMBA_CACHE_DIR, mirroring the source folders
    root_cache = cache.parent if in_tree else cache
    for _ in rel.parts:
        root_cache = root_cache.parent
    twin_cache = root_cache / "twin" / "__pycache__" if in_tree else root_cache / "twin"
    stamp = twin_cache / "bss-twin-sources"
    want = _sources_hash()
    try:
        if stamp.exists() and stamp.read_text() == want:
            return
        for pkg in ("twin", "isa"):
            for f in (root_cache / pkg).rglob("*.nb[ic]"):
                f.unlink(missing_ok=True)
        twin_cache.mkdir(parents=True, exist_ok=True)
        stamp.write_text(want)
    except OSError:                            # a read-only cache: numba recompiles there anyway
        pass


_checked_all = False


def announce(dispatcher, what: str, seconds: str) -> None:
    """Before the first call of `dispatcher` in this process: one line on stderr
    if its compiled code is not in numba's cache yet."""
    check_dependencies(dispatcher)
    if what in _done or dispatcher.signatures:
        return
    _done.add(what)
    try:
        index = pathlib.Path(dispatcher._cache._cache_file._index_path)
    except AttributeError:                     # numba internals moved: stay quiet
        return
    if not index.exists():
        _say(what, seconds)


def note_compile(what: str, seconds: str) -> None:
    """The one line, once per process and `what`."""
    if what not in _done:
        _done.add(what)
        _say(what, seconds)


def _say(what: str, seconds: str) -> None:
    print(f"bss-twin: compiling {what} (first use after install, {seconds}; cached afterwards) ...",
          file=sys.stderr, flush=True)
