"""One integration suite, every transport (see conftest.py): the same host code
must behave the same over the in-process twin, TCP, a pseudo-terminal, the
pyserial `twin://` URL and, when BSS_HARDWARE_URL names one, a real board.

Only the public host API is used: connect, Connection.program/run, the Program
builder (read_words, write_words, timer_reset, spikes, wait_until, done),
tickets, RunResult.spikes and the typed exceptions.  Expected values come from
what the tests write and send, never from the chip's own answers.
"""
from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from host import ChipError
from isa.wire import ErrorReason

#: Spikes looped back by the crossbar come back within this many ticks (10 us).
MAX_LOOPBACK_LATENCY = 1250


# --------------------------------------------------------------------------- helpers
def legal_words(reg, n: int, rng: np.random.Generator, **fixed: int) -> np.ndarray:
    """`n` random register words that are legal for `reg`: every field a random
    value up to its legal maximum (or the value given in `fixed`), reserved bits 0."""
    words = np.zeros(n, dtype=np.int64)
    for f in reg.fields:
        v = fixed[f.name] if f.name in fixed else rng.integers(0, f.limit + 1, n)
        words |= np.asarray(v, dtype=np.int64) << f.lsb
    return words


def unmapped_address(regmap) -> int:
    """An address past every register of the map."""
    t = regmap.ranges
    end = int(max(int(s) + int(c) for s, c in zip(t.start, t.count)))
    assert end + 16 < 1 << 32
    return end + 16


def drain(conn) -> None:
    """Let events still in flight from earlier programs leave the chip."""
    prog = conn.program()
    prog.timer_reset()
    prog.wait_until(20_000)
    prog.done()
    conn.run(prog)


def neurons_quiet(conn, prog) -> None:
    """Disable every neuron so that only looped-back input can produce events."""
    reg = conn.regmap.register("neuron", "config")
    addrs = conn.regmap.addresses("neuron", "config")
    prog.write_words(addrs, np.full(len(addrs), reg.encode(enable=0, spike_out=0), dtype=np.int64))


def spike_train(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and times (ticks) of an input train, with some equal times (packed
    several to a word) and out of order (the builder sorts)."""
    times = rng.integers(500, 40_000, n)
    times[1::7] = times[0::7][:len(times[1::7])]           # shared time stamps
    labels = rng.integers(0, 1 << 16, n)
    return labels, times


def match_loopback(out: np.ndarray, labels: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Pair output events with input events (both ordered by time, then label);
    returns the latency of each pair after checking the labels pair up."""
    i_order = np.lexsort((labels, times))
    o_order = np.lexsort((out["label"], out["time"]))
    assert out["label"][o_order].tolist() == labels[i_order].tolist()
    return out["time"][o_order].astype(np.int64) - times[i_order]


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- identity
def test_connection_identifies_the_chip(conn):
    p = conn.profile
    assert conn.regmap.profile == p.name
    if conn.transport_name != "hardware":
        assert (p.name, conn.serial) == ("dls", 3)
    prog = conn.program()
    t = prog.read_words(np.array([conn.regmap.address("chip_id", "serial")], dtype=np.uint64))
    prog.done()
    conn.run(prog)
    assert t.values.tolist() == [conn.serial]


# --------------------------------------------------------------------------- register round trips
def test_synapse_weights_bulk_write_and_readback(conn):
    rm = conn.regmap
    rng = np.random.default_rng(11)
    for register in ("weights", "labels"):
        addrs = rm.addresses("synapse", register)
        values = legal_words(rm.register("synapse", register), len(addrs), rng)
        prog = conn.program()
        prog.write_words(addrs, values)
        t = prog.read_words(addrs)
        prog.done()
        conn.run(prog)
        assert t.values.dtype == np.uint32
        np.testing.assert_array_equal(t.values, values.astype(np.uint32))
    # A second program sees what the first one left (nothing is per-program).
    prog = conn.program()
    t = prog.read_words(rm.addresses("synapse", "labels"))
    prog.done()
    conn.run(prog)
    np.testing.assert_array_equal(t.values, values.astype(np.uint32))


def test_reads_come_back_in_the_order_they_were_issued(conn):
    rm = conn.regmap
    addrs = rm.addresses("synapse", "weights")[:16]
    values = legal_words(rm.register("synapse", "weights"), 16, np.random.default_rng(5))
    prog = conn.program()
    prog.write_words(addrs, values)
    order = np.random.default_rng(6).permutation(16)
    tickets = [prog.read_words(addrs[k:k + 1]) for k in order]
    prog.done()
    conn.run(prog)
    assert [int(t.values[0]) for t in tickets] == [int(values[k]) for k in order]


# --------------------------------------------------------------------------- errors
def test_write_to_a_read_only_register_raises_naming_address_and_reason(conn):
    addr = conn.regmap.address("chip_id", "serial")
    prog = conn.program()
    prog.write_words([addr], [conn.serial ^ 1])
    after = prog.read_words(np.array([addr], dtype=np.uint64))
    prog.done()
    with pytest.raises(ChipError) as info:
        conn.run(prog)
    exc = info.value
    assert [(r.index, r.reason) for r in exc.rejected] == [(0, ErrorReason.READ_ONLY)]
    assert re.fullmatch(rf"chip rejected 1 word\(s\): word 0: write {conn.serial ^ 1:#010x} to "
                        rf"{addr:#010x} \(chip_id\.serial\): write to a read-only register \(READ_ONLY\)",
                        str(exc)), str(exc)
    # The rejected write changed nothing, and the read after it was answered.
    assert after.values.tolist() == [conn.serial]


def test_unknown_address_raises_naming_address_and_reason(conn):
    addr = unmapped_address(conn.regmap)
    prog = conn.program()
    bad = prog.read_words(np.array([addr], dtype=np.uint64))
    good = prog.read_words(np.array([conn.regmap.address("chip_id", "serial")], dtype=np.uint64))
    prog.done()
    with pytest.raises(ChipError) as info:
        conn.run(prog)
    exc = info.value
    assert [(r.index, r.reason) for r in exc.rejected] == [(0, ErrorReason.UNKNOWN_ADDRESS)]
    assert re.fullmatch(rf"chip rejected 1 word\(s\): word 0: read {addr:#010x} \(unmapped\): "
                        r"no register at this address \(UNKNOWN_ADDRESS\)", str(exc)), str(exc)
    with pytest.raises(ChipError):
        bad.values
    assert good.values.tolist() == [conn.serial]
    # The connection is still in step: the next program runs normally.
    prog = conn.program()
    t = prog.read_words(np.array([conn.regmap.address("chip_id", "serial")], dtype=np.uint64))
    prog.done()
    conn.run(prog)
    assert t.values.tolist() == [conn.serial]


# --------------------------------------------------------------------------- events
def test_crossbar_loopback_returns_spikes_with_a_fixed_latency(conn):
    rm = conn.regmap
    crossbar = rm.register("routing", "crossbar")
    cb_addr = rm.address("routing", "crossbar")
    drain(conn)
    labels, times = spike_train(np.random.default_rng(21), 60)
    prog = conn.program()
    neurons_quiet(conn, prog)
    prog.write_words([cb_addr], [crossbar.encode(loopback=1, recurrent=0, record=0)])
    prog.timer_reset()
    prog.spikes(labels, times)
    prog.wait_until(int(times.max()) + 5_000)
    prog.done()
    out = conn.run(prog).spikes
    assert out.dtype.names == ("time", "label")
    assert len(out) == len(labels)
    latency = match_loopback(out, labels, times)
    assert (latency == latency[0]).all(), f"latency varies: {sorted(set(latency.tolist()))}"
    assert 0 <= latency[0] <= MAX_LOOPBACK_LATENCY
    # Loopback off: the same input produces nothing.
    prog = conn.program()
    prog.write_words([cb_addr], [crossbar.encode(loopback=0, recurrent=0, record=0)])
    prog.timer_reset()
    prog.spikes(labels, times)
    prog.wait_until(int(times.max()) + 5_000)
    prog.done()
    assert len(conn.run(prog).spikes) == 0


# --------------------------------------------------------------------------- same program, same results
def common_program(conn):
    """A program touching registers and events, with its tickets."""
    rm = conn.regmap
    rng = np.random.default_rng(1234)
    prog = conn.program()
    neurons_quiet(conn, prog)
    w_addr, l_addr = rm.addresses("synapse", "weights"), rm.addresses("synapse", "labels")
    d_addr = rm.addresses("synapse_driver", "config")
    prog.write_words(w_addr, legal_words(rm.register("synapse", "weights"), len(w_addr), rng))
    prog.write_words(l_addr, legal_words(rm.register("synapse", "labels"), len(l_addr), rng))
    prog.write_words(d_addr, legal_words(rm.register("synapse_driver", "config"), len(d_addr), rng, enable=0))
    cb = rm.register("routing", "crossbar")
    prog.write_words([rm.address("routing", "crossbar")], [cb.encode(loopback=1, recurrent=0, record=0)])
    tickets = [prog.read_words(a) for a in (w_addr, l_addr, d_addr)]
    tickets.append(prog.read_words(np.array([rm.address("routing", "crossbar")], dtype=np.uint64)))
    prog.timer_reset()
    labels, times = spike_train(rng, 40)
    prog.spikes(labels, times)
    prog.wait_until(int(times.max()) + 5_000)
    prog.done()
    return prog, tickets, labels, times


def test_common_program_digest(conn, digests):
    drain(conn)
    prog, tickets, labels, times = common_program(conn)
    result = conn.run(prog)
    values = np.concatenate([t.values for t in tickets])
    spikes = result.spikes
    order = np.lexsort((spikes["label"], spikes["time"]))
    rel_times = spikes["time"][order].astype(np.int64) - int(spikes["time"].min()) if len(spikes) else spikes["time"]
    # Sanity against what was sent, so that a digest of garbage cannot agree by accident.
    assert len(spikes) == len(labels)
    match_loopback(spikes, labels, times)
    digests[conn.transport_name] = {"profile": conn.profile.name, "read values": digest(values),
                                    "events": digest(spikes["label"][order], rel_times)}


@pytest.mark.after_all_transports
def test_every_transport_gave_the_same_results(digests):
    """Transports to chips of one profile must agree (a board of another
    generation runs a different program, so it is compared with its own kind)."""
    if len(digests) < 2:
        pytest.skip("needs the digest test of at least two transports in this session")
    by_profile: dict[str, dict[str, dict]] = {}
    for name, d in digests.items():
        by_profile.setdefault(d["profile"], {})[name] = d
    for profile, group in by_profile.items():
        reference_name = "inprocess" if "inprocess" in group else sorted(group)[0]
        reference = group[reference_name]
        differing = {name: [part for part in d if d[part] != reference[part]]
                     for name, d in group.items() if d != reference}
        assert not differing, f"{profile}: results differ from {reference_name}'s: {differing}"
