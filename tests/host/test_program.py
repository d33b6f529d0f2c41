"""Program building (host/program.py): the words a program sends.

Expected words are computed here with plain bit arithmetic from the layout
rule of isa/wire.py (8-bit header on top, fields most significant first, the
last field at bit 0), never by the code under test.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import host
from host.units import us
from isa.wire import MESSAGES

H = {m.name: m.header for m in MESSAGES}


@pytest.fixture(scope="module")
def conn():
    with host.connect("twin:hx") as c:
        yield c


# --------------------------------------------------------------------------- reference encoders
def wait_word(t: int) -> int:
    return H["wait_until"] << 56 | t


def pack_word(labels: list[int]) -> int:
    """spike_pack_k: label0 at bit 0, label1 at bit 16, label2 at bit 32."""
    word = H[f"spike_pack_{len(labels)}"] << 56
    for j, label in enumerate(labels):
        word |= label << (16 * j)
    return word


def reference_spike_words(labels: list[int], times: list[int]) -> list[int]:
    """Sorted by time (input order among equal times), one wait_until per
    distinct time, then packs of up to three labels, label0 first."""
    events = sorted(zip(times, range(len(times)), labels))
    out = []
    for t, group in itertools.groupby(events, key=lambda e: e[0]):
        labs = [lab for _, _, lab in group]
        out.append(wait_word(t))
        out.extend(pack_word(labs[i:i + 3]) for i in range(0, len(labs), 3))
    return out


def address_word(is_read: int, be: int, address: int) -> int:
    return H["omnibus_address"] << 56 | is_read << 36 | be << 32 | address


def data_word(data: int) -> int:
    return H["omnibus_data"] << 56 | data


# --------------------------------------------------------------------------- spikes
spike_lists = st.integers(0, 40).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 0xFFFF), min_size=n, max_size=n),
    st.lists(st.integers(0, 6) | st.integers(0, (1 << 32) - 1), min_size=n, max_size=n)))


@settings(max_examples=300, deadline=None)
@given(spike_lists, st.sampled_from(["list", "numpy"]))
def test_spike_packing_matches_the_reference(conn, spike_list, form):
    labels, times = spike_list
    p = conn.program()
    if form == "numpy":
        p.spikes(np.array(labels, dtype=np.uint16), np.array(times, dtype=np.uint32))
    else:
        p.spikes(labels, times)
    assert p.words().tolist() == reference_spike_words(labels, times)


def test_spike_packing_example(conn):
    p = conn.program()
    p.spikes([10, 11, 12, 13, 14, 1], [5, 5, 5, 5, 5, 2])
    assert p.words().tolist() == [wait_word(2), pack_word([1]), wait_word(5), pack_word([10, 11, 12]),
                                  pack_word([13, 14])]


def test_spike_times_as_time_values(conn):
    p = conn.program()
    p.spikes([1, 2, 3], [us(2), 5, us(1)])          # 250, 5, 125 ticks
    assert p.words().tolist() == reference_spike_words([1, 2, 3], [250, 5, 125])
    p = conn.program()
    p.spikes([4, 5], us(1))                          # one time for every label
    assert p.words().tolist() == [wait_word(125), pack_word([4, 5])]
    p = conn.program()
    p.spikes([4, 5], 7)
    assert p.words().tolist() == [wait_word(7), pack_word([4, 5])]


def test_no_spikes_no_words(conn):
    p = conn.program()
    p.spikes([], [])
    assert len(p) == 0


@pytest.mark.parametrize("labels, times, exc, message", [
    ([0x10000], [0], ValueError, r"^spike labels must fit 16 bits$"),
    ([-1], [0], ValueError, r"^spike labels must fit 16 bits$"),
    ([1], [1 << 32], ValueError, r"^spike times must be within the 32-bit timer range \(ticks\)$"),
    ([1], [-1], ValueError, r"^spike times must be within the 32-bit timer range \(ticks\)$"),
    ([1], np.array([1.5]), TypeError, r"^spike times of dtype float64: give FPGA ticks as integers"),
    ([1], [1.5], TypeError, r"^time 1\.5: give FPGA ticks as an integer"),
])
def test_spike_input_errors(conn, labels, times, exc, message):
    p = conn.program()
    with pytest.raises(exc, match=message):
        p.spikes(labels, times)
    assert len(p) == 0


def test_spikes_come_back_through_the_crossbar(conn):
    from twin.core import LOOPBACK_LATENCY_TICKS

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 1 << 16, 200)
    times = rng.integers(100, 5000, 200)
    p = conn.program()
    p.write(host.ChipOnly(), host.CrossbarConfig(loopback=1))
    p.timer_reset()
    p.spikes(labels, times)
    p.wait_until(6000)
    p.write(host.ChipOnly(), host.CrossbarConfig(loopback=0))
    res = conn.run(p)
    order = sorted(range(200), key=lambda i: (times[i], i))
    assert res.spikes["label"].tolist() == [int(labels[i]) for i in order]
    assert res.spikes["time"].tolist() == [int(times[i]) + LOOPBACK_LATENCY_TICKS for i in order]


# --------------------------------------------------------------------------- register words
@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 32) - 1)), min_size=1, max_size=20),
       st.integers(0, 15))
def test_write_and_read_words(conn, pairs, be):
    p = conn.program()
    p.write_words([a for a, _ in pairs], [v for _, v in pairs], byte_enables=be)
    t = p.read_words([a for a, _ in pairs])
    want = [w for a, v in pairs for w in (address_word(0, be, a), data_word(v))]
    want += [address_word(1, 0xF, a) for a, _ in pairs]
    assert p.words().tolist() == want
    assert (t.first_word, t.count) == (2 * len(pairs), len(pairs))


def test_register_words_must_fit(conn):
    p = conn.program()
    with pytest.raises(ValueError, match=r"^register words must fit 32 bits$"):
        p.write_words([0], [1 << 32])


def test_control_words(conn):
    p = conn.program()
    p.timer_reset()
    p.wait_until(us(1))
    p.barrier()
    p.reset()
    p.done(tag=0x1234)
    assert p.words().tolist() == [H["timer_reset"] << 56, wait_word(125), H["barrier"] << 56 | 0b111,
                                  H["reset"] << 56 | 1, H["loopback"] << 56 | 1 << 16 | 0x1234]
    with pytest.raises(RuntimeError, match=r"^the program is complete \(done\(\) was called\); start a new one$"):
        p.timer_reset()


def test_wait_until_range(conn):
    p = conn.program()
    with pytest.raises(ValueError, match=r"^wait_until\(4294967296 ticks\) outside the 32-bit timer range$"):
        p.wait_until(1 << 32)
    with pytest.raises(TypeError, match=r"^time 2\.5: give FPGA ticks as an integer"):
        p.wait_until(2.5)


def test_ticket_before_run(conn):
    p = conn.program()
    t = p.read(host.NeuronOnChip(0), host.NeuronConfig)
    assert not t.done
    with pytest.raises(RuntimeError, match=r"^ticket for NeuronConfig at NeuronOnChip\(neuron=0\) is not "
                                           r"filled yet: run the program first$"):
        t.value


def test_describe_word_names_operation_and_register(conn):
    p = conn.program()
    rm = conn.regmap
    a = rm.address("neuron", "config", 3)
    p.write_words([a], [5])
    p.read_words([rm.address("synapse", "weights", (1, 2, 3))])
    p.timer_reset()
    assert [p.describe_word(i) for i in range(4)] == [
        f"write 0x00000005 to {a:#010x} (neuron.config[3])",
        f"write 0x00000005 to {a:#010x} (neuron.config[3])",
        f"read {rm.address('synapse', 'weights', (1, 2, 3)):#010x} (synapse.weights[1, 2, 3])",
        "timer reset"]
    assert p.describe_word(4) == "<outside the program>"
