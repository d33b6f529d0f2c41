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
`check_dependencies` keeps, beside numba's index, a hash of every source file
of the `twin` and `isa` packages and drops the cached kernel when it differs.
"""
from __future__ import annotations

import hashlib
import pathlib
import sys

_done: set[str] = set()
_checked: set[int] = set()
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
    """Once per process and kernel: drop its cached machine code if any source
    file of `twin` or `isa` changed since it was cached."""
    if id(dispatcher) in _checked or dispatcher.signatures:
        return
    _checked.add(id(dispatcher))
    try:
        cache = dispatcher._cache
        index = pathlib.Path(cache._cache_file._index_path)
    except AttributeError:                     # numba internals moved: nothing to check
        return
    stamp = index.with_suffix(".sources")
    want = _sources_hash()
    try:
        have = stamp.read_text() if stamp.exists() else None
        if have != want:
            if index.exists():
                cache.flush()
                index.unlink(missing_ok=True)
            stamp.write_text(want)
    except OSError:                            # a read-only cache: numba recompiles there anyway
        pass


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
        print(f"bss-twin: compiling {what} (first use after install, {seconds}; cached afterwards) ...",
              file=sys.stderr, flush=True)
