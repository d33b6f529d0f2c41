"""Transports for the integration suite: every test that takes `conn` runs once
per transport.

    inprocess   twin:dls?serial=3                    (host's in-process transport)
    tcp         `bss-twin serve --tcp 0` subprocess   (host's TCP transport)
    pty         `bss-twin serve --pty` subprocess     (host's serial transport, pyserial)
    pyserial    twin://dls?serial=3                  (pyserial URL handler registered by host)
    hardware    $BSS_HARDWARE_URL                    (skipped unless set; marker `hardware`)

The servers are started once per test session and stopped at its end; their
stderr (one line per fault or notice) is shown when a server misbehaves.
"""
from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PYTHON = ROOT / ".venv" / "bin" / "python"
if not PYTHON.exists():
    PYTHON = Path(sys.executable)

SERIAL = 3
HARDWARE_ENV = "BSS_HARDWARE_URL"
TRANSPORTS = ["inprocess", "tcp", "pty", "pyserial",
              pytest.param("hardware", marks=pytest.mark.hardware)]


class ServerProcess:
    """`bss-twin serve ...` as a subprocess; `address` is what it printed."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [str(PYTHON), "-m", "tools.cli", "serve", "--chip", "dls", "--serial", str(SERIAL), *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        self.line = self.proc.stdout.readline().strip() if ready else ""
        if not self.line:
            self.proc.kill()
            raise RuntimeError(f"`bss-twin serve {' '.join(args)}` printed no address; "
                               f"stderr: {self.proc.communicate()[1]}")

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


def _tcp_server(*args: str):
    srv = ServerProcess("--tcp", "0", *args)
    m = re.fullmatch(r"listening on (tcp://127\.0\.0\.1:\d+)", srv.line)
    assert m, srv.line
    srv.url = m.group(1)
    yield srv
    rc, err = srv.stop()
    assert rc == 0, f"TCP server exited with {rc}: {err}"


@pytest.fixture(scope="session")
def tcp_server():
    """`bss-twin serve --tcp 0`: each client its own instance of the chip."""
    yield from _tcp_server()


@pytest.fixture(scope="session")
def shared_tcp_server():
    """`bss-twin serve --tcp 0 --shared`: one chip for every client."""
    yield from _tcp_server("--shared")


@pytest.fixture(scope="session")
def pty_server():
    srv = ServerProcess("--pty")
    m = re.fullmatch(r"pty (/dev/pts/\d+)", srv.line)
    assert m, srv.line
    srv.url = m.group(1)
    yield srv
    rc, err = srv.stop()
    assert rc == 0, f"pty server exited with {rc}: {err}"


def transport_url(request, name: str) -> str:
    if name == "inprocess":
        return f"twin:dls?serial={SERIAL}"
    if name == "pyserial":
        return f"twin://dls?serial={SERIAL}"
    if name == "tcp":
        return request.getfixturevalue("tcp_server").url
    if name == "pty":
        return request.getfixturevalue("pty_server").url
    if name == "hardware":
        url = os.environ.get(HARDWARE_ENV)
        if not url:
            pytest.skip(f"no board: set {HARDWARE_ENV} to a connection URL to run the suite on hardware")
        return url
    raise ValueError(name)


@pytest.fixture(scope="session", params=TRANSPORTS)
def conn(request):
    """One host connection per transport, shared by the session's tests."""
    from host import connect

    c = connect(transport_url(request, request.param), timeout=20.0)
    c.transport_name = request.param
    yield c
    c.close()


@pytest.fixture(scope="session")
def digests() -> dict[str, dict[str, str]]:
    """transport -> {part: digest} of the common program, filled by the tests."""
    return {}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Tests marked `after_all_transports` run last (after pytest's grouping by
    transport), so they see what every transport recorded."""
    last = [it for it in items if it.get_closest_marker("after_all_transports")]
    if last:
        items[:] = [it for it in items if it not in last] + last


def pytest_configure(config):
    config.addinivalue_line("markers", "after_all_transports: run after every transport's tests")
