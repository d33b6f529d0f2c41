"""Limits no program can pass (twin/limits.py, twin/executor.py, twin/session.py,
twin/stream.py, host.ProgramLimit).

A program's wall time, chip time and output are bounded; its answers stream
to the client instead of piling up in the server; a program whose frames
trickle in without an end is dropped; a flood of bad frames is answered by a
trickle of notices, every fault still counted.  Each hostile program is
followed by a good one: the chip stays usable.  Expected values come from how
the programs are built and from the limits' constants, never from the server;
times appear only as generous hang guards.
"""
from __future__ import annotations

import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import host
from isa import frame, wire
from isa.frame import MAGIC
from isa.regmap import register_map
from isa.wire import ErrorReason as ER, LimitKind, TimeoutReason as TR
from twin import executor as X
from twin import stream
from twin.chip import Chip
from twin.limits import DEFAULT_OUTPUT_WORDS, Limits
from twin.server import PtyServer, TwinServer
from twin.session import NOTICE_BURST, NOTICE_RATE, ChipHost, Session
from tools.bench.limits import fire_all
from tools.rawclient import RawClient, wait_for

ROOT = Path(__file__).resolve().parents[2]
GUARD = 120.0                  # hang guard (s): nothing here comes near it
RM = register_map("dls")
SERIAL_ADDR = RM.address("chip_id", "serial")
LONG_WAIT = (1 << 32) - 1
E = wire.encode


# --------------------------------------------------------------------------- helpers
def still_usable(conn) -> None:
    prog = conn.program()
    t = prog.read(host.ChipOnly(), host.ChipId)
    s = prog.read_words(np.array([SERIAL_ADDR], np.uint64))
    conn.run(prog)
    assert t.value.profile == conn.profile.code and int(s.values[0]) == conn.serial


def link(conn) -> dict[str, int]:
    names = [r.name for r in conn.regmap.block("link").registers]
    prog = conn.program()
    t = prog.read_words(np.array([conn.regmap.address("link", n) for n in names], np.uint64))
    conn.run(prog)
    return dict(zip(names, (int(x) for x in t.values)))


def Raw(address) -> RawClient:
    """A client speaking only isa.frame: answers counted, not kept."""
    return RawClient.tcp(address, seq=1000, keep=False, timeout=GUARD)


# =========================================================================== the program limits
def test_a_long_wait_with_every_neuron_firing_ends_at_a_limit_and_the_next_program_runs():
    """2**32 - 1 ticks of all neurons firing: the output limit (the server's
    default) ends it; with a lower hardware-time limit asked for by the
    program, that one does, at exactly its tick."""
    chip = Chip("dls", 3)
    with TwinServer(chip, shared=True, log=lambda line: None) as srv, host.connect(srv.url, timeout=GUARD) as conn:
        fire_all(conn)
        before = link(conn)
        prog = conn.program()
        first = prog.read(host.ChipOnly(), host.ChipId)           # word 0
        prog.timer_reset()                                         # word 1
        prog.wait_until(LONG_WAIT)                                 # word 2
        later = prog.read(host.ChipOnly(), host.ChipId)
        with pytest.raises(host.ProgramLimit) as e:
            conn.run(prog)
        err = e.value
        assert isinstance(err, host.ChipError)
        assert (err.limit, err.value, err.index) == (LimitKind.OUTPUT_WORDS, DEFAULT_OUTPUT_WORDS, 2)
        assert err.what == f"wait until {LONG_WAIT}"
        assert f"ended at word 2 (wait until {LONG_WAIT}): it reached its output limit of " \
               f"{DEFAULT_OUTPUT_WORDS} words; nothing after that word ran" in str(err)
        assert first.value.profile == 1                            # answered before the limit
        with pytest.raises(host.ProgramLimit):
            later.value                                            # not: it came after
        got = err.result
        # The rest of the output: `event_loss` words, one per piece of chip time (how many
        # pieces depends on the machine's speed; the spikes do not).
        assert DEFAULT_OUTPUT_WORDS // 2 < len(got.spikes) < DEFAULT_OUTPUT_WORDS
        assert got.events_dropped > 0
        assert link(conn)["program_limits"] - before["program_limits"] == 1
        still_usable(conn)

        # The program asks for less chip time than the server allows: the wait ends there.
        limit = 250_000
        prog = conn.program()
        prog.limit(ticks=limit)
        prog.timer_reset()
        prog.wait_until(LONG_WAIT)
        t0 = chip.now
        with pytest.raises(host.ProgramLimit) as e:
            conn.run(prog)
        assert (e.value.limit, e.value.value, e.value.index) == (LimitKind.TICKS, limit, 2)
        assert "hardware-time limit of 250000 ticks" in str(e.value)
        assert chip.now - t0 == limit                              # exactly the chip time allowed
        spikes = e.value.result.spikes
        assert len(spikes) > 1000 and spikes["time"].max() <= limit
        still_usable(conn)


def test_the_server_maximum_holds_whatever_the_program_asks_for():
    chip = Chip("dls", 4)
    with TwinServer(chip, shared=True, log=lambda line: None, limits=Limits(ticks=100_000)) as srv, \
            host.connect(srv.url, timeout=GUARD) as conn:
        prog = conn.program()
        prog.limit(ticks=10 ** 9)                                  # more than the server's: the server's holds
        prog.timer_reset()
        prog.wait_until(500_000)
        with pytest.raises(host.ProgramLimit) as e:
            conn.run(prog)
        assert (e.value.limit, e.value.value, e.value.index) == (LimitKind.TICKS, 100_000, 2)
        # Two waits of one program count together.
        prog = conn.program()
        prog.timer_reset()
        prog.wait_until(60_000)
        prog.timer_reset()
        prog.wait_until(60_000)
        with pytest.raises(host.ProgramLimit) as e:
            conn.run(prog)
        assert (e.value.limit, e.value.value, e.value.index) == (LimitKind.TICKS, 100_000, 3)
        prog = conn.program()
        prog.timer_reset()
        prog.wait_until(99_000)
        conn.run(prog)                                             # within the limit: runs
        still_usable(conn)


def test_a_huge_read_ends_at_the_output_limit():
    """10 M register reads: the reads up to the output limit are answered,
    the program ends at the first read beyond it."""
    with TwinServer(Chip("dls", 5), shared=True, log=lambda line: None) as srv, host.connect(srv.url, timeout=GUARD) as conn:
        prog = conn.program()
        first = prog.read(host.ChipOnly(), host.ChipId)            # word 0: one answer
        big = prog.read_words(np.full(10_000_000, SERIAL_ADDR, np.uint64))   # words 1 ..
        with pytest.raises(host.ProgramLimit) as e:
            conn.run(prog)
        assert (e.value.limit, e.value.value) == (LimitKind.OUTPUT_WORDS, DEFAULT_OUTPUT_WORDS)
        assert e.value.index == DEFAULT_OUTPUT_WORDS               # 1 + (limit - 1) reads answered
        assert e.value.what == "read 0x000f0001 (chip_id.serial)"
        assert first.value.profile == 1
        with pytest.raises(host.ProgramLimit):
            big.values
        still_usable(conn)


def test_three_million_input_spikes_end_at_the_output_limit():
    """3 M input spikes echoed by the crossbar loopback (in-process twin)."""
    with host.connect("twin:dls?serial=6", timeout=GUARD) as conn:
        prog = conn.program()
        prog.write(host.ChipOnly(), host.CrossbarConfig(loopback=1))
        conn.run(prog)
        n = 3_000_000
        prog = conn.program()
        prog.timer_reset()
        prog.spikes(np.arange(n) % 1000, 100 + 2 * np.arange(n))   # one every 2 ticks: the FIFO keeps up
        prog.wait_until(100 + 2 * n + 1000)
        with pytest.raises(host.ProgramLimit) as e:
            conn.run(prog)
        err = e.value
        assert (err.limit, err.value) == (LimitKind.OUTPUT_WORDS, DEFAULT_OUTPUT_WORDS)
        assert err.what in ("spike input", f"wait until {100 + 2 * n + 1000}")
        got = err.result.spikes
        assert len(got) == DEFAULT_OUTPUT_WORDS and err.result.events_dropped == 0
        assert got["label"].tolist()[:5] == [0, 1, 2, 3, 4]
        still_usable(conn)


def test_the_wall_time_limit_ends_a_program_on_the_chip():
    """hx, every neuron firing: the twin runs thousands of times slower than
    the chip; the program asked for 0.2 s of wall time."""
    with host.connect("twin:hx?serial=2", timeout=GUARD) as conn:
        fire_all(conn)
        prog = conn.program()
        prog.limit(seconds=0.2)
        prog.timer_reset()
        prog.wait_until(LONG_WAIT)
        with pytest.raises(host.ProgramLimit) as e:
            conn.run(prog)
        assert (e.value.limit, e.value.value, e.value.index) == (LimitKind.SECONDS, 200, 2)
        assert "wall-time limit of 0.2 s" in str(e.value)
        assert len(e.value.result.spikes) > 0                      # what it did is answered
        still_usable(conn)


# =========================================================================== executor level
def _program(*words) -> np.ndarray:
    return np.array([int(w) for w in words], np.uint64)


def test_limit_words_lower_and_end_the_program_where_a_limit_is_used_up():
    chip = Chip("dls", 7)
    ex = X.Executor(chip)
    weight = int(RM.addresses("synapse", "weights")[0])
    rd = E("omnibus_address", is_read=1, byte_enables=0xF, address=SERIAL_ADDR)
    wr = [E("omnibus_address", is_read=0, byte_enables=0xF, address=weight), E("omnibus_data", data=0x55)]
    # An unknown kind is rejected (FIELD_RANGE) and changes nothing.
    out = ex.run(_program(E("limit", kind=9, value=1), rd, E("loopback", halt=1, tag=1)))
    assert [wire.describe(w) for w in out] == [
        "error(reason=8, header=12, index=0)", "read_data(data=0x7)", "loopback_echo(halt=1, tag=1)"]
    # Two reads allowed; the third read ends the program: the write after it does not happen,
    # the halt is echoed.
    out = ex.run(_program(E("limit", kind=LimitKind.OUTPUT_WORDS, value=2), rd, rd, rd, *wr,
                          E("loopback", halt=1, tag=2)))
    assert [wire.describe(w) for w in out] == [
        "read_data(data=0x7)", "read_data(data=0x7)",
        f"limit_reached(kind={int(LimitKind.OUTPUT_WORDS)}, value=2)",
        f"error(reason={int(ER.PROGRAM_LIMIT)}, header=7, index=3)", "loopback_echo(halt=1, tag=2)"]
    assert int(chip.bus.read(np.array([weight], np.uint64)).values[0]) == 0
    # A limit lowered below what the program used already ends it at the limit word.
    out = ex.run(_program(rd, rd, E("limit", kind=LimitKind.OUTPUT_WORDS, value=1), rd,
                          E("loopback", halt=1, tag=3)))
    assert [wire.describe(w) for w in out][2:4] == [
        f"limit_reached(kind={int(LimitKind.OUTPUT_WORDS)}, value=1)",
        f"error(reason={int(ER.PROGRAM_LIMIT)}, header=12, index=2)"]
    assert chip.link_counters["program_limits"] == 2
    # The next program runs under the chip's own limits again.
    out = ex.run(_program(rd, rd, rd, E("loopback", halt=1, tag=4)))
    assert len(out) == 4


def test_a_wait_in_pieces_gives_the_same_spikes_and_samples(monkeypatch):
    """A long timed segment (a train of input spikes into a recurrently driven
    network with the membrane ADC on), run in one call and in pieces of chip
    time and windows of words: the same spikes and MADC samples."""
    def run(pieces: bool) -> np.ndarray:
        monkeypatch.setattr(X, "PIECE_NEURON_STEPS", 1 << (20 if pieces else 50))
        monkeypatch.setattr(X, "TIMED_WINDOW", 1 << (12 if pieces else 40))
        chip = Chip("dls", 8)
        ex = X.Executor(chip)
        p = chip.profile
        v = lambda volts: int(round(volts / p.analog.v_max * 1022))
        cells = []
        for n in range(p.neurons):
            for name, value in (("v_leak", v(0.45)), ("v_threshold", v(0.5)), ("v_reset", v(0.3)),
                                ("i_bias_syn_exc_gm", 1022)):
                idx = n * len(p.neuron_cells) + p.neuron_cells.index(name)
                cells += [E("omnibus_address", is_read=0, byte_enables=0xF, address=RM.address("capmem", "neuron", idx)),
                          E("omnibus_data", data=value)]
        setup = cells + [
            E("omnibus_address", is_read=0, byte_enables=0xF, address=RM.address("capmem", "config")),
            E("omnibus_data", data=RM.register("capmem", "config").encode(enable=1, settle=0))]
        for n in range(p.neurons):
            for reg, word in (("neuron", "config"), ("routing", "neuron_label")):
                fields = dict(enable=1, refractory=10, refractory_clock=2) if reg == "neuron" else dict(label=1, enable=1)
                setup += [E("omnibus_address", is_read=0, byte_enables=0xF, address=RM.address(reg, word, n)),
                          E("omnibus_data", data=RM.register(reg, word).encode(**fields))]
        for r in range(p.rows):
            setup += [E("omnibus_address", is_read=0, byte_enables=0xF, address=RM.address("synapse_driver", "config", r)),
                      E("omnibus_data", data=RM.register("synapse_driver", "config").encode(enable=1, gain=15))]
        for q in RM.addresses("synapse", "weights"):
            setup += [E("omnibus_address", is_read=0, byte_enables=0xF, address=int(q)), E("omnibus_data", data=0x28282828)]
        setup += [E("omnibus_address", is_read=0, byte_enables=0xF, address=RM.address("madc", "config")),
                  E("omnibus_data", data=RM.register("madc", "config").encode(enable=1, source=0, neuron=3, period=97))]
        assert [wire.describe(w) for w in ex.run(_program(*setup))] == []
        t = np.unique(np.random.default_rng(1).integers(0, 3_000_000, 20_000))
        prog = [E("timer_reset")]
        for tt in t.tolist():
            prog += [E("wait_until", time=tt), E("spike_pack_1", label0=0)]
        prog += [E("wait_until", time=4_000_000), E("loopback", halt=1, tag=1)]
        return ex.run(_program(*prog))

    whole, pieces = run(False), run(True)
    h1, h2 = whole >> np.uint64(56), pieces >> np.uint64(56)
    for name in ("spike", "madc_sample"):
        a, b = whole[h1 == wire.H[name]], pieces[h2 == wire.H[name]]
        assert len(a) > 1000
        assert np.array_equal(np.sort(a), np.sort(b)), name
    loss = lambda r, h: int(wire.field_bulk("event_loss", "dropped", r[h == wire.H["event_loss"]]).sum())
    assert loss(whole, h1) == loss(pieces, h2)


def test_pieces_follow_the_network_and_the_wall_clock(monkeypatch):
    """Pieces of chip time (twin.executor.Pieces): one cell of the grid after a
    piece full of spikes, up to PIECE_CELLS_MAX while quiet; shorter while a
    piece takes more than PIECE_SECONDS, short from the start when a PPU
    begins to execute; the whole wait on a quiet chip."""
    from twin.chip import Activity
    chip = Chip("dls", 17)
    pieces = X.Pieces(chip)
    cell, step = X.piece_ticks(chip), chip.profile.analog.step_ticks
    assert cell == step * (X.PIECE_NEURON_STEPS // chip.profile.neurons)
    assert pieces.end(5, 10 ** 12) == 10 ** 12                               # quiet chip: one piece
    chip.bus.write(np.array([RM.address("neuron", "config", 0)], np.uint64),
                   np.array([RM.register("neuron", "config").encode(enable=1)], np.uint32), np.array([0xF], np.uint8))
    assert not chip.core.quiet()
    assert pieces.end(5, 10 ** 12) == cell                                   # one cell first, on the grid
    for _ in range(4):
        pieces.saw(Activity(), cell, 0.001)                                 # quiet and fast: longer
    assert pieces.end(cell, 10 ** 12) == (1 + X.PIECE_CELLS_MAX) * cell
    pieces.saw(Activity(neuron_spikes=X.PIECE_NEURON_STEPS), X.PIECE_CELLS_MAX * cell, 0.001)
    assert pieces.end(cell, 10 ** 12) == 2 * cell                            # busy: one cell
    pieces.saw(Activity(), cell, 10 * X.PIECE_SECONDS)                       # slow: a tenth of it
    assert pieces.end(0, 10 ** 12) == cell // 10 // step * step
    assert pieces.end(0, 1000) == 1000                                        # never past the wait
    fresh = X.Pieces(chip)
    monkeypatch.setattr(type(chip.ppus[0]), "executing", property(lambda self: True))
    assert fresh.end(0, 10 ** 12) == max(step, cell >> 6) // step * step        # firmware: start short


def test_pieces_of_firmware_alone_follow_the_wall_clock_past_the_grid(monkeypatch):
    """PPUs executing on a quiet core (nothing to bound: no neuron, sampling or
    generator on): pieces start short and double while fast, past the grid's
    PIECE_CELLS_MAX cells (the per-piece call used to cost firmware through
    `ppu-run` 2-3x of its speed), and shrink again when slow."""
    from twin.chip import Activity
    chip = Chip("hx", 17)
    cell, step = X.piece_ticks(chip), chip.profile.analog.step_ticks
    monkeypatch.setattr(type(chip.ppus[0]), "executing", property(lambda self: True))
    assert chip.core.quiet()
    pieces = X.Pieces(chip)
    now, end = 0, pieces.end(0, 10 ** 12)
    assert end == max(step, cell >> 6) // step * step                          # start short
    for _ in range(20):                                                        # fast pieces: twice as long each
        pieces.saw(Activity(), end - now, X.PIECE_SECONDS / 10)
        now, end = end, pieces.end(end, 10 ** 12)
    assert end - now > 100 * X.PIECE_CELLS_MAX * cell
    pieces.saw(Activity(), end - now, 10 * X.PIECE_SECONDS)                    # slow: a tenth of it
    assert pieces.end(end, 10 ** 12) - end == (end - now) // 10 // step * step
    assert pieces.end(end, end + 7) == end + 7                                  # never past the wait


# =========================================================================== streaming
def test_a_long_recording_streams_and_the_server_holds_a_bounded_part_of_it():
    """8 Mi membrane-ADC samples (64 MiB) to a client that only counts them:
    they arrive in many frames while the program runs, and the most the
    server held at once is one batch plus one piece of chip time's output."""
    chip = Chip("dls", 9)
    chip_host = ChipHost(chip)
    n = 8 << 20
    with TwinServer(chip_host, log=lambda line: None, limits=Limits(output_words=n)) as srv:
        c = Raw(srv.address)
        madc = [E("omnibus_address", is_read=0, byte_enables=0xF, address=RM.address("madc", "config")),
                E("omnibus_data", data=RM.register("madc", "config").encode(enable=1, source=0, neuron=3, period=1))]
        c.send(c.frame(madc + [E("timer_reset"), E("wait_until", time=LONG_WAIT), E("loopback", halt=1, tag=1)]))
        c.until_echo()
        assert c.counts[wire.H["madc_sample"]] == n
        assert c.notices == [("limit_reached", LimitKind.OUTPUT_WORDS, n), ("error", ER.PROGRAM_LIMIT, 3)]
        assert c.frames_in >= n // frame.MAX_FRAME_WORDS
        bound = X.FLUSH_WORDS + X.PIECE_CELLS_MAX * X.piece_ticks(chip) + 16     # one batch + one piece
        assert chip_host.peak_output_words <= bound < n // 4
        c.send(c.frame([E("omnibus_address", is_read=1, byte_enables=0xF, address=SERIAL_ADDR),
                        E("loopback", halt=1, tag=2)]))
        c.until_echo()
        assert c.data[-1] == 9
        c.close()


@pytest.mark.parametrize("arq", [1, 0])
def test_a_long_recording_streams_through_the_pty(arq):
    lines: list[str] = []
    srv = PtyServer(Chip("dls", 16), log=lines.append, limits=Limits(output_words=3 << 20)).start()
    try:
        url = srv.address if arq else f"serial://{srv.address}?arq=0"
        with host.connect(url, timeout=GUARD) as conn:
            prog = conn.program()
            prog.write(host.ChipOnly(), host.MADCConfig(enable=1, source=0, neuron=3, period=1))
            prog.timer_reset()
            prog.wait_until(LONG_WAIT)
            with pytest.raises(host.ProgramLimit) as e:
                conn.run(prog)
            assert (e.value.limit, e.value.value) == (LimitKind.OUTPUT_WORDS, 3 << 20)
            assert len(e.value.result.madc) == 3 << 20
            still_usable(conn)
        assert any("program limit reached: output limit of 3145728 words" in line for line in lines), lines
        assert any("error PROGRAM_LIMIT" in line and "index 0x3" in line for line in lines), lines
    finally:
        srv.stop()


def test_a_client_that_takes_no_answers_loses_them_not_the_chip(monkeypatch):
    """A client sends a long recording and reads nothing: after the stall time
    its answers are dropped (and counted in the log), its program runs to its
    end, it is disconnected, and the next client is served."""
    monkeypatch.setattr(stream, "OUTPUT_STALL_SECONDS", 0.5)
    lines: list[str] = []
    with TwinServer(Chip("dls", 10), shared=True, log=lines.append, limits=Limits(output_words=16 << 20)) as srv:
        c = Raw(srv.address)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        madc = [E("omnibus_address", is_read=0, byte_enables=0xF, address=RM.address("madc", "config")),
                E("omnibus_data", data=RM.register("madc", "config").encode(enable=1, source=0, neuron=3, period=1))]
        c.send(c.frame(madc + [E("timer_reset"), E("wait_until", time=LONG_WAIT), E("loopback", halt=1, tag=1)]))
        assert wait_for(lambda: any("took none of its answers for 0.5 s" in line for line in lines)), lines
        line = next(line for line in lines if "took none of its answers" in line)
        assert re.search(r"; \d+ answer bytes dropped$", line), line
        with host.connect(srv.url, timeout=GUARD) as conn:
            still_usable(conn)
        c.close()


# =========================================================================== unfinished programs
def test_a_trickled_program_is_dropped_after_the_receive_budget():
    chip_host = ChipHost(Chip("dls", 11))
    with TwinServer(chip_host, log=lambda line: None, receive_timeout=0.3, limits=Limits(receive_seconds=0.6)) as srv:
        c = Raw(srv.address)
        barrier = [E("barrier", mask=0)] * 1000
        first = c.seq
        c.send(c.frame(barrier, end=False))
        deadline = time.monotonic() + GUARD
        while ("timeout", TR.PROGRAM_RECEIVE, first) not in c.notices:      # a frame every 0.1 s: never quiet
            assert time.monotonic() < deadline, c.notices
            c.send(c.frame(barrier, end=False, cont=True))
            c.pump(0.1)
        assert chip_host.buffered_words == 0                                # its memory is free
        dropped_at = c.seq
        c.send(c.frame(barrier, end=False, cont=True) + c.frame(barrier + [E("loopback", halt=1, tag=1)], cont=True))
        c.until(lambda: ("error", ER.FRAME_SEQUENCE, dropped_at + 1) in c.notices)
        assert ("error", ER.FRAME_SEQUENCE, dropped_at) in c.notices         # its later frames: discarded
        assert wire.H["loopback_echo"] not in c.counts                       # nothing of it ran
        c.send(c.frame([E("omnibus_address", is_read=1, byte_enables=0xF, address=SERIAL_ADDR),
                        E("loopback", halt=1, tag=2)]))
        c.until_echo()
        assert c.data == [11]
        c.close()


@pytest.mark.parametrize("shared", [True, False], ids=["one chip", "a chip per client"])
def test_unfinished_programs_of_all_clients_share_a_bounded_buffer(shared):
    words = frame.MAX_FRAME_WORDS
    barrier = [E("barrier", mask=0)] * words
    with TwinServer(Chip("dls", 12), shared=shared, log=lambda line: None,
                    limits=Limits(receive_buffer_words=3 * words)) as srv:
        chip_host = srv.chip_host
        a, b = Raw(srv.address), Raw(srv.address)
        a.send(a.frame(barrier, end=False) + a.frame(barrier, end=False, cont=True))
        assert wait_for(lambda: chip_host.buffered_words == 2 * words)
        b_first = b.seq
        b.send(b.frame(barrier, end=False))
        assert wait_for(lambda: chip_host.buffered_words == 3 * words)
        b.send(b.frame(barrier, end=False, cont=True))                       # does not fit
        b.until(lambda: ("error", ER.RECEIVE_BUFFER_FULL, b_first) in b.notices)
        assert wait_for(lambda: chip_host.buffered_words == 2 * words)       # b's first frame let go
        a.send(a.frame([E("loopback", halt=1, tag=1)], cont=True))           # a's program ends: it runs
        a.until_echo()
        assert wait_for(lambda: chip_host.buffered_words == 0)
        assert a.notices == []
        b.send(b.frame([E("omnibus_address", is_read=1, byte_enables=0xF, address=SERIAL_ADDR),
                        E("loopback", halt=1, tag=2)]))
        b.until_echo()
        assert b.data == [12]
        a.close()
        b.close()


def test_the_host_names_a_full_receive_buffer():
    with TwinServer(Chip("dls", 13), shared=True, log=lambda line: None,
                    limits=Limits(receive_buffer_words=1000)) as srv, host.connect(srv.url, timeout=GUARD) as conn:
        prog = conn.program()
        prog.read_words(np.full(frame.MAX_FRAME_WORDS + 10, SERIAL_ADDR, np.uint64))   # two frames
        with pytest.raises(host.LinkError, match=r"the chip dropped this program: the chip side's buffer for "
                                                 r"programs being received is full; send it again later "
                                                 r"\(RECEIVE_BUFFER_FULL\); the program did not run"):
            conn.run(prog)
        still_usable(conn)


# =========================================================================== floods of bad frames
def test_start_marker_spam_is_answered_at_a_bounded_size_and_every_fault_counted():
    with TwinServer(Chip("dls", 14), shared=True, log=lambda line: None) as srv, host.connect(srv.url, timeout=GUARD) as conn:
        before = link(conn)
        c = Raw(srv.address)
        n = 1 << 20                                                          # 2 MiB: a million markers
        c.send(MAGIC * n)
        c.send(c.frame([E("omnibus_address", is_read=1, byte_enables=0xF, address=SERIAL_ADDR),
                        E("loopback", halt=1, tag=1)]))
        c.until_echo()
        assert c.data == [14]
        after = link(conn)
        crc = [x for x in c.notices if x[:2] == ("error", ER.FRAME_CRC)]
        summed = sum(x[2] for x in c.notices if x[:2] == ("error", ER.NOTICES_DROPPED))
        assert all(x[2] == 0xFFFFFFFF for x in crc)
        assert after["crc_errors"] - before["crc_errors"] == n                # every fault counted
        assert len(crc) + summed == n                                       # and every notice: sent or summed
        assert after["notices_dropped"] - before["notices_dropped"] == summed
        assert len(crc) >= NOTICE_BURST
        assert c.bytes_in <= 2 * n // 20                                        # the answer: a few % of the input
        c.close()


def test_the_notice_rate_and_its_summary():
    """With a clock of our own: a burst of NOTICE_BURST notices goes out, the
    rest is counted and summed up in one NOTICES_DROPPED before the next
    notice (or at the receive timeout)."""
    now = [100.0]
    chip_host = ChipHost(Chip("dls", 15))
    session = Session(chip_host, clock=lambda: now[0])
    dec = frame.FrameDecoder(expect_to_host=True)

    def answers(data: bytes) -> list[tuple]:
        frames, faults = dec.feed(data)
        assert not faults
        return [(ER(f["reason"]), f["index"]) for fr in frames for _, f in
                (wire.decode(int(w)) for w in fr.words)]

    got = answers(session.receive(MAGIC * 3000 + b"\x00" * 14))
    assert got == [(ER.FRAME_CRC, 0xFFFFFFFF)] * NOTICE_BURST
    now[0] += 1.0                                                            # NOTICE_RATE more may go
    got = answers(session.receive(MAGIC * 10 + b"\x00" * 14))
    assert got == [(ER.NOTICES_DROPPED, 3000 - NOTICE_BURST)] + [(ER.FRAME_CRC, 0xFFFFFFFF)] * 10
    assert chip_host.chip.link_counters["notices_dropped"] == 3000 - NOTICE_BURST
    assert chip_host.chip.link_counters["crc_errors"] == 3010
    got = answers(session.receive(MAGIC * 250 + b"\x00" * 14))
    assert got == [(ER.FRAME_CRC, 0xFFFFFFFF)] * (int(NOTICE_RATE) - 10)      # the rest of this second's
    assert answers(session.receive(MAGIC * 5 + b"\x00" * 14)) == []          # none left: counted
    assert answers(session.receive_timeout()) == [(ER.NOTICES_DROPPED, 10 + 5)]
    assert answers(session.receive_timeout()) == []                          # summed up once
    assert chip_host.chip.link_counters["notices_dropped"] == 3000 - NOTICE_BURST + 15


# =========================================================================== the server's options
def test_serve_options_set_the_limits():
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "serve", "--chip", "dls", "--tcp", "0",
                             "--max-output-words", "100", "--max-program-ticks", "5000"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        r, _, _ = select.select([proc.stdout], [], [], GUARD)
        line = proc.stdout.readline().strip() if r else ""
        assert line.startswith("listening on tcp://"), (line, proc.stderr.read() if proc.poll() is not None else "")
        with host.connect(line.split()[-1], timeout=GUARD) as conn:
            prog = conn.program()
            prog.read_words(np.full(200, SERIAL_ADDR, np.uint64))
            with pytest.raises(host.ProgramLimit) as e:
                conn.run(prog)
            assert (e.value.limit, e.value.value, e.value.index) == (LimitKind.OUTPUT_WORDS, 100, 100)
            prog = conn.program()
            prog.timer_reset()
            prog.wait_until(6000)
            with pytest.raises(host.ProgramLimit) as e:
                conn.run(prog)
            assert (e.value.limit, e.value.value) == (LimitKind.TICKS, 5000)
    finally:
        proc.terminate()
        proc.communicate(timeout=GUARD)
    bad = subprocess.run([sys.executable, "-m", "tools.cli", "serve", "--tcp", "0", "--max-program-seconds", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=GUARD)
    assert bad.returncode == 1
    assert "--max-program-seconds must be positive, not 0.0" in bad.stderr


def test_a_tcp_read_without_time_is_a_poll():
    """host: a read with timeout 0 (the link layer asks when a retransmission is
    due) returns what is there, b"" when nothing is, instead of failing."""
    from host.transport import TcpTransport
    lsock = socket.create_server(("127.0.0.1", 0))
    try:
        t = TcpTransport(f"tcp://127.0.0.1:{lsock.getsockname()[1]}")
        peer, _ = lsock.accept()
        assert t.read(0.0) == b""
        peer.sendall(b"xy")
        assert wait_for(lambda: select.select([t._sock], [], [], 0)[0] != [])
        assert t.read(0.0) == b"xy"
        t.close()
        peer.close()
    finally:
        lsock.close()
