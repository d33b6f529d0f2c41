"""The TCP server as a service: the chip's lock (clients keep a shared chip
across programs), resuming a session after a lost connection, and state that
outlives the server (`--state DIR`).  Expected values come from what each
test writes, never from the server."""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import host  # noqa: E402
from host import ChipError, LockBroken, LockTimeout  # noqa: E402
from isa import wire  # noqa: E402
from isa.regmap import register_map  # noqa: E402
from isa.wire import ErrorReason  # noqa: E402
from twin.chip import Chip  # noqa: E402
from twin.server import TwinServer  # noqa: E402

RM = register_map("dls")
WEIGHT = RM.address("synapse", "weights")          # every bit a field on dls
LINK = {r.name: RM.address("link", r.name) for r in RM.block("link").registers}


def write(conn, value: int, address: int = WEIGHT) -> None:
    p = conn.program()
    p.write_words(np.array([address], np.uint64), np.array([value], np.uint32))
    conn.run(p)


def read(conn, address: int = WEIGHT) -> int:
    p = conn.program()
    t = p.read_words(np.array([address], np.uint64))
    conn.run(p)
    return int(t.values[0])


class Log(list):
    def __call__(self, line: str) -> None:
        self.append(line)

    def has(self, text: str) -> bool:
        return any(text in line for line in self)


def _wait_for(cond, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


# =========================================================================== the lock
@pytest.fixture
def shared():
    log = Log()
    srv = TwinServer(Chip("dls", 3), shared=True, log=log, max_lock_seconds=30).start()
    srv.test_log = log
    yield srv
    srv.stop()


def test_a_locked_chip_keeps_other_clients_programs_waiting(shared):
    a, b = host.connect(shared.url), host.connect(shared.url)
    try:
        with a.lock(wait=1.0) as lk:
            assert lk.ms_left is not None and 0 < lk.ms_left <= 30_000
            write(a, 0x1111_1111)
            t = threading.Thread(target=write, args=(b, 0x2222_2222))
            t.start()
            time.sleep(0.3)
            assert t.is_alive()                       # B's write waits (queued, not failed)
            assert read(a) == 0x1111_1111             # A's value unchanged
            write(a, 0x3333_3333)
            assert read(a) == 0x3333_3333
        t.join(10)
        assert not t.is_alive()
        assert read(a) == 0x2222_2222                 # B's write landed after the release
        assert shared.test_log.has("lock acquired") and shared.test_log.has("lock released")
    finally:
        a.close()
        b.close()


def test_a_held_lock_times_out_for_another_client(shared):
    a, b = host.connect(shared.url), host.connect(shared.url)
    try:
        with a.lock():
            t0 = time.monotonic()
            with pytest.raises(LockTimeout, match="held by another client"):
                b.lock(wait=0.2).acquire()
            assert time.monotonic() - t0 >= 0.2
            assert shared.test_log.has("lock refused")
        with b.lock(wait=0.2):                        # free again
            write(b, 5)
    finally:
        a.close()
        b.close()


def test_the_holders_disconnect_releases_the_lock(shared):
    a, b = host.connect(shared.url), host.connect(shared.url)
    try:
        a.lock().acquire()
        write(a, 7)
        got = {}
        t = threading.Thread(target=lambda: got.setdefault("lock", b.lock(wait=10.0).acquire()))
        t.start()
        time.sleep(0.2)
        assert t.is_alive()
        a.close()
        t.join(10)
        assert "lock" in got and got["lock"].held
        assert read(b) == 7
        assert _wait_for(lambda: shared.test_log.has("lock released (its client disconnected)"))
    finally:
        b.close()


def test_a_lock_held_too_long_is_broken_and_the_holder_told():
    log = Log()
    with TwinServer(Chip("dls", 3), shared=True, log=log, max_lock_seconds=0.3) as srv:
        a, b = host.connect(srv.url), host.connect(srv.url)
        try:
            lk = a.lock().acquire()
            assert 0 < lk.ms_left <= 300
            write(a, 1)
            t0 = time.monotonic()
            write(b, 2)                                # waits until the lock is broken, then lands
            assert time.monotonic() - t0 >= 0.2
            assert log.has("lock broken: held longer than 0.3 s")
            with pytest.raises(LockBroken) as exc:
                read(a)                                # A's next program is told (it ran: value read)
            assert exc.value.result is not None
            with pytest.raises(LockBroken):
                lk.release()
            assert read(a) == 2
            assert read(a, LINK["locks_broken"]) == 1
        finally:
            a.close()
            b.close()


def test_a_lock_word_among_other_words_is_rejected_and_the_rest_runs(shared):
    with host.connect(shared.url) as a:
        raw = np.array([wire.encode("omnibus_address", is_read=0, byte_enables=0xF, address=WEIGHT),
                        wire.encode("omnibus_data", data=0x55),
                        wire.encode("lock", acquire=1, wait_ms=0),
                        wire.encode("omnibus_address", is_read=1, byte_enables=0xF, address=WEIGHT),
                        wire.encode("loopback", halt=1, tag=77)], dtype=np.uint64)
        resp = a._exchange(raw, 77, frame_seqs=True)
        h = resp >> np.uint64(56)
        err = wire.fields_bulk("error", resp[h == wire.H["error"]])
        assert err["reason"].tolist() == [ErrorReason.LOCK_PLACEMENT] and err["index"].tolist() == [2]
        assert wire.field_bulk("read_data", "data", resp[h == wire.H["read_data"]]).tolist() == [0x55]
        assert shared.chip_host.lock_holder is None


def test_on_a_server_of_own_chips_the_lock_is_granted_at_once_and_never_broken():
    with TwinServer(Chip("dls", 3), max_lock_seconds=0.1, log=Log()) as srv:
        a, b = host.connect(srv.url), host.connect(srv.url)
        try:
            with a.lock(wait=0) as la, b.lock(wait=0) as lb:
                assert la.ms_left is None and lb.ms_left is None
                time.sleep(0.2)
                write(a, 3)
                write(b, 4)
                assert read(a) == 3 and read(b) == 4
        finally:
            a.close()
            b.close()


# =========================================================================== state
from twin import state as twin_state  # noqa: E402
from twin.state import StateError  # noqa: E402

CELLS = RM.addresses("capmem", "neuron")[[0, 5, 700]]
GLOBAL = RM.addresses("capmem", "global")[[3]]
PPU_MEM = RM.addresses("ppu", "memory")[[0, 1, 4095]]
CELL_VALUES = [17, 1022, 512]
MEM_VALUES = [0xDEAD_BEEF, 0x0000_0001, 0x8000_0000]


def write_many(conn, addresses, values) -> None:
    p = conn.program()
    p.write_words(np.asarray(addresses, np.uint64), np.asarray(values, np.uint32))
    conn.run(p)


def read_many(conn, addresses) -> list[int]:
    p = conn.program()
    t = p.read_words(np.asarray(addresses, np.uint64))
    conn.run(p)
    return [int(v) for v in t.values]


def _write_state(conn) -> None:
    write_many(conn, list(CELLS) + list(GLOBAL), CELL_VALUES + [300])
    write_many(conn, PPU_MEM, MEM_VALUES)
    write_many(conn, [WEIGHT], [0x0102_0304])


def _read_state(conn) -> list[int]:
    return read_many(conn, list(CELLS) + list(GLOBAL) + list(PPU_MEM) + [WEIGHT])


EXPECTED = CELL_VALUES + [300] + MEM_VALUES + [0x0102_0304]


def test_state_outlives_the_server(tmp_path):
    log = Log()
    with TwinServer(Chip("dls", 3), shared=True, state=tmp_path, log=log) as srv:
        with host.connect(srv.url) as c:
            assert _read_state(c) != EXPECTED              # a fresh chip holds other values
            _write_state(c)
    assert (tmp_path / "dls-serial-3.state").exists()
    assert log.has("saved") and not list(tmp_path.glob("*.tmp"))
    with TwinServer(Chip("dls", 3), shared=True, state=tmp_path, log=Log()) as srv:
        with host.connect(srv.url) as c:
            assert _read_state(c) == EXPECTED
    # An isolated server: every client's own chip starts from the saved state.
    with TwinServer(Chip("dls", 3), state=tmp_path, log=Log()) as srv:
        a, b = host.connect(srv.url), host.connect(srv.url)
        try:
            assert _read_state(a) == EXPECTED and _read_state(b) == EXPECTED
            write_many(a, [PPU_MEM[0]], [5])
            assert read_many(b, [PPU_MEM[0]]) == [MEM_VALUES[0]]
        finally:
            a.close()
            b.close()


def test_state_is_saved_while_the_server_runs(tmp_path):
    with TwinServer(Chip("dls", 3), shared=True, state=tmp_path, state_every=0.1, log=Log()) as srv:
        with host.connect(srv.url) as c:
            _write_state(c)
            path = tmp_path / "dls-serial-3.state"

            def in_file() -> list[int]:                    # what the file holds, read into another chip
                if not path.exists():
                    return []
                chip = Chip("dls", 3)
                twin_state.restore(chip, twin_state.decode(path.read_bytes(), chip, str(path)))
                return [int(v) for v in chip.bus.read(np.array(list(CELLS) + list(GLOBAL) + list(PPU_MEM)
                                                               + [WEIGHT], np.uint64)).values]
            assert _wait_for(lambda: in_file() == EXPECTED)
            time.sleep(0.3)
            saves = srv.state.saves
            read_many(c, [WEIGHT])                         # a program that changes nothing
            time.sleep(0.4)
            assert srv.state.saves == saves


def _saved_file(tmp_path) -> Path:
    with TwinServer(Chip("dls", 3), shared=True, state=tmp_path, log=Log()) as srv:
        with host.connect(srv.url) as c:
            _write_state(c)
    return tmp_path / "dls-serial-3.state"


@pytest.mark.parametrize("damage, text", [
    (lambda b: b[:len(b) // 2], "damaged or torn"),
    (lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:], "damaged or torn"),
    (lambda b: b"garbage" + b, "not a bss-twin state file"),
    (lambda b: b[:16] + (2).to_bytes(4, "big") + b[20:], r"version 2, this twin reads version 1 \(written by a newer"),
])
def test_a_damaged_state_file_is_refused_naming_it(tmp_path, damage, text):
    path = _saved_file(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(StateError, match=text) as exc:
        TwinServer(Chip("dls", 3), shared=True, state=tmp_path, log=Log())
    assert str(path) in str(exc.value)


def test_the_state_of_another_chip_is_refused(tmp_path):
    path = _saved_file(tmp_path)
    path.rename(tmp_path / "dls-serial-4.state")
    with pytest.raises(StateError, match=r"another chip \(dls serial 3\), not of this dls serial 4"):
        TwinServer(Chip("dls", 4), shared=True, state=tmp_path, log=Log())


def test_a_failed_save_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = _saved_file(tmp_path)
    old = path.read_bytes()
    srv = TwinServer(Chip("dls", 3), shared=True, state=tmp_path, log=Log()).start()
    try:
        with host.connect(srv.url) as c:
            write_many(c, [PPU_MEM[0]], [0x1234])

        def crash(src, dst):                           # the machine dies between write and rename
            raise OSError("simulated crash before the rename")
        monkeypatch.setattr(twin_state.os, "replace", crash)
        with pytest.raises(OSError, match="simulated crash"):
            srv.state.save_if_changed()
        assert path.read_bytes() == old and not list(tmp_path.glob("*.tmp"))
        monkeypatch.undo()
    finally:
        srv.stop()
    chip = Chip("dls", 3)
    twin_state.restore(chip, twin_state.decode(path.read_bytes(), chip, str(path)))
    assert int(chip.bus.read(np.array([PPU_MEM[0]], np.uint64)).values[0]) == 0x1234   # the save at stop


def test_a_temporary_file_left_by_a_crash_is_ignored(tmp_path):
    path = _saved_file(tmp_path)
    (tmp_path / (path.name + ".tmp")).write_bytes(path.read_bytes()[:50])     # a save cut short
    log = Log()
    with TwinServer(Chip("dls", 3), shared=True, state=tmp_path, log=log) as srv:
        with host.connect(srv.url) as c:
            assert _read_state(c) == EXPECTED
    assert log.has("left by an interrupted save")


# =========================================================================== resume
from host.arq import ResumeRefused  # noqa: E402


def _cut_after_write(conn, pause: float = 0.3):
    """The next write goes out, then the TCP connection under the link breaks
    before the answer is read (the answer is lost with the socket's buffer)."""
    transport = conn.transport
    original = transport.write

    def write_then_cut(data: bytes) -> None:
        original(data)
        transport.write = original
        time.sleep(pause)                       # the server runs it and answers into the dead socket
        transport.inner._sock.close()
    transport.write = write_then_cut


def test_a_broken_connection_is_resumed_and_the_program_ran_once():
    log = Log()
    with TwinServer(Chip("dls", 3), log=log) as srv:               # the client's chip is its own
        with host.connect(srv.url + "?resume=1") as c:
            write(c, 0x0A0A_0A0A, WEIGHT + 1)                       # chip state before the break
            before = read(c, LINK["programs"])
            _cut_after_write(c)
            p = c.program()
            p.write_words(np.array([WEIGHT], np.uint64), np.array([0x5151_5151], np.uint32))
            t = p.read_words(np.array([WEIGHT, WEIGHT + 1, LINK["programs"]], np.uint64))
            result = c.run(p)                                       # the answer comes over the new connection
            assert [int(v) for v in t.values] == [0x5151_5151, 0x0A0A_0A0A, before + 1]
            note = [n for n in result.notices if "was resumed" in n]
            assert len(note) == 1 and "sent again" not in note[0], result.notices   # the server had it all
            assert read(c, LINK["programs"]) == before + 2         # it ran once (and this read)
            assert read(c, LINK["resumes"]) == 1
            assert c.transport.stats()["resumes"] == 1
        assert log.has("kept 30 s for a resume") and log.has("resumed session")
        assert srv.service_counts["resumed"] == 1
    assert not log.has("internal error")


def test_a_program_that_had_not_arrived_is_sent_again_after_the_resume_and_runs_once():
    with TwinServer(Chip("dls", 3), log=Log()) as srv:
        with host.connect(srv.url + "?resume=1") as c:
            before = read(c, LINK["programs"])
            transport = c.transport
            original_write, original_flush = transport.write, transport._flush

            def write_lost(data: bytes) -> None:   # the program's packets never leave: the line breaks
                transport.write = original_write
                transport._flush = lambda: None
                original_write(data)
                transport._flush = original_flush
                transport.endpoint.take_outbox()
                transport.inner._sock.close()
            transport.write = write_lost
            p = c.program()
            p.write_words(np.array([WEIGHT], np.uint64), np.array([0x77], np.uint32))
            t = p.read_words(np.array([WEIGHT, LINK["programs"]], np.uint64))
            result = c.run(p)
            assert [int(v) for v in t.values] == [0x77, before + 1]
            assert any("were sent again" in n for n in result.notices), result.notices
            assert read(c, LINK["programs"]) == before + 2


def test_a_program_given_up_at_the_break_is_reported_cancelled_not_run_again():
    log = Log()
    with TwinServer(Chip("dls", 3), shared=True, log=log) as srv:
        a, b = host.connect(srv.url), host.connect(srv.url + "?resume=1")
        try:
            write(a, 1)
            lk = a.lock().acquire()                      # B's program waits for the lock ...
            _cut_after_write(b, pause=0.1)
            with pytest.raises(host.ProgramCancelled, match="may have run in part"):
                write(b, 2)                              # ... when its connection breaks: given up
            lk.release()
            assert read(a) == 1                          # and not run again after the resume
            write(b, 3)                                  # the resumed link goes on
            assert read(a) == 3
            assert log.has("program cancelled at tick") and log.has("resumed session")
        finally:
            a.close()
            b.close()


def test_an_expired_session_is_refused_with_its_reason():
    log = Log()
    with TwinServer(Chip("dls", 3), log=log, resume_seconds=0.2) as srv:
        with host.connect(srv.url + "?resume=1") as c:
            write(c, 9)
            c.transport.inner._sock.close()
            assert _wait_for(lambda: log.has("kept 0.2 s for a resume"))
            time.sleep(0.5)
            with pytest.raises(ResumeRefused, match="RESUME_EXPIRED") as exc:
                read(c)
            assert exc.value.reason is ErrorReason.RESUME_EXPIRED
        assert log.has("not resumed within 0.2 s") and srv.service_counts["expired"] == 1


def test_a_server_that_keeps_no_sessions_refuses_a_resume():
    with TwinServer(Chip("dls", 3), log=Log(), resume_seconds=0) as srv:
        with host.connect(srv.url + "?resume=1") as c:
            write(c, 9)
            c.transport.inner._sock.close()
            with pytest.raises(ResumeRefused, match="RESUME_UNKNOWN"):
                read(c)


def test_a_client_that_closes_is_not_kept():
    log = Log()
    with TwinServer(Chip("dls", 3), log=log) as srv:
        with host.connect(srv.url + "?resume=1") as c:
            write(c, 9)
        assert _wait_for(lambda: log.has("disconnected"))
        assert not log.has("for a resume") and srv.service_counts["kept"] == 0


def test_a_lock_lost_with_a_broken_connection_is_reported_after_the_resume():
    log = Log()
    with TwinServer(Chip("dls", 3), shared=True, log=log) as srv:
        a, b = host.connect(srv.url + "?resume=1"), host.connect(srv.url)
        try:
            lk = a.lock().acquire()
            write(a, 1)
            a.transport.inner._sock.close()
            assert _wait_for(lambda: log.has("lock released (its client disconnected)"))
            write(b, 2)                                   # the lock went with the connection
            with pytest.raises(LockBroken, match="lost its lock") as exc:
                read(a)                                   # resumed; told with the next answer
            assert exc.value.result is not None
            with pytest.raises(LockBroken):
                lk.release()
            assert read(a) == 2
        finally:
            a.close()
            b.close()


def test_bss_twin_serve_state_survives_a_sigterm_restart(tmp_path):
    import re
    import signal
    import subprocess

    python = ROOT / ".venv" / "bin" / "python"
    python = python if python.exists() else Path(sys.executable)

    def serve():
        proc = subprocess.Popen([str(python), "-m", "tools.cli", "serve", "--tcp", "0", "--shared", "--serial", "3",
                                 "--state", str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        line = proc.stdout.readline().strip()
        assert re.fullmatch(r"listening on tcp://127\.0\.0\.1:\d+", line), (line, proc.stderr.read())
        return proc, line.split()[-1]

    def stop(proc) -> str:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        return err

    proc, url = serve()
    try:
        with host.connect(url) as c:
            _write_state(c)
    finally:
        err = stop(proc)
    assert "state: saved" in err, err
    proc, url = serve()
    try:
        with host.connect(url) as c:
            assert _read_state(c) == EXPECTED
    finally:
        err = stop(proc)
    assert "state: loaded" in err, err


def test_the_oldest_kept_session_makes_room_for_a_newer_one():
    log = Log()
    with TwinServer(Chip("dls", 3), log=log, max_kept=1) as srv:
        a, b = host.connect(srv.url + "?resume=1"), host.connect(srv.url + "?resume=1")
        try:
            write(a, 1)
            write(b, 2)
            a.transport.inner._sock.close()
            assert _wait_for(lambda: srv.service_counts["kept"] == 1)
            b.transport.inner._sock.close()
            assert _wait_for(lambda: srv.service_counts["kept"] == 2)
            assert log.has("discarded to make room for a newer one (at most 1 sessions")
            assert read(b) == 2                                  # the newer one resumes, its chip kept
            with pytest.raises(ResumeRefused, match="RESUME_EXPIRED"):
                read(a)
            assert srv.service_counts == {"kept": 2, "resumed": 1, "expired": 1, "refused": 1}
        finally:
            a.close()
            b.close()


def test_programs_over_a_damaged_link_that_also_breaks_run_once_and_right():
    """fault+tcp (byte flips, lost chunks) with resume=1; the TCP connection is
    cut every 7 programs, at random points of the exchange: every answer is
    right and the chip ran each program once."""
    rng = np.random.default_rng(5)
    with TwinServer(Chip("dls", 3), log=Log()) as srv:
        host_, port = srv.address
        with host.connect(f"fault+tcp://{host_}:{port}?flip=1e-3&drop=1e-3&seed=3&resume=1") as c:
            before = read(c, LINK["programs"])
            n = 40
            for i in range(n):
                if i % 7 == 3:
                    original = c.transport.write

                    def cut(data, original=original):        # the socket under the fault layer
                        c.transport.write = original
                        original(data)
                        time.sleep(float(rng.uniform(0, 0.01)))
                        c.transport.inner.inner._sock.close()
                    c.transport.write = cut
                value = 0x1000 + i
                p = c.program()
                p.write_words(np.array([WEIGHT + i % 4], np.uint64), np.array([value], np.uint32))
                t = p.read_words(np.array([WEIGHT + i % 4], np.uint64))
                c.run(p)
                assert int(t.values[0]) == value, i
            assert read(c, LINK["programs"]) == before + 1 + n
            assert c.transport.stats()["resumes"] == len([i for i in range(n) if i % 7 == 3])
