"""Where bss-twin keeps what it computes once and reuses across processes
(compiled PPU regions, assembled firmware images, calibrations).

$BSS_TWIN_CACHE_DIR, else $XDG_CACHE_HOME/bss-twin, else ~/.cache/bss-twin.
Not a hardware fact, but a convention every part of the project (twin, host,
firmware) follows, so it lives beside the contract that all of them import.
"""
from __future__ import annotations

import os
import pathlib
import sys


def cache_root() -> pathlib.Path:
    """The cache folder as the environment names it (not created)."""
    root = os.environ.get("BSS_TWIN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "bss-twin")
    return pathlib.Path(root)


def cache_folder(name: str, without: str) -> pathlib.Path | None:
    """`cache_root()/name`, created; None (with one line on stderr saying
    `without`, what happens instead) when it cannot be created."""
    folder = cache_root() / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except OSError as e:
        print(f"bss-twin: cannot use {folder} as a cache ({e}); {without} "
              "(set BSS_TWIN_CACHE_DIR to a writable folder)", file=sys.stderr)
        return None
