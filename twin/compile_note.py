"""Say so when a first call must compile a numba kernel.

numba compiles a kernel on its first call and caches the machine code
(`cache=True`); only the first use after an install (or after the source
changed) waits.  Without a word that wait looks like a hang, so the callers
announce it once, on stderr, naming what compiles and roughly how long it
takes on a small machine.  numba's cache index file tells whether a compile
is coming; when that cannot be found (numba internals moved) nothing is said.
"""
from __future__ import annotations

import pathlib
import sys

_done: set[str] = set()


def announce(dispatcher, what: str, seconds: str) -> None:
    """Before the first call of `dispatcher` in this process: one line on stderr
    if its compiled code is not in numba's cache yet."""
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
