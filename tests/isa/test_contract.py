"""The wire contract holds without hand-kept lists: each side's handler table
is checked against the wire dictionary at import (isa.wire.check_handlers),
and the dispatch is derived from the message kinds."""
from __future__ import annotations

import pathlib
import re
import sys
import types

import pytest

from isa import wire
from isa.wire import CONTROL, NOTICE, ContractError, Direction, Kind, Message

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _import_edited(path: str, module: str, package: str, drop: str) -> None:
    """Execute the source of `path` as module `module` with the line holding
    `drop` removed (as if a developer deleted it)."""
    text = (ROOT / path).read_text()
    lines = text.splitlines(keepends=True)
    hit = [i for i, line in enumerate(lines) if drop in line]
    assert len(hit) == 1, f"{path}: expected one line with {drop!r}, found {len(hit)}"
    del lines[hit[0]]
    mod = types.ModuleType(module)
    mod.__package__ = package
    mod.__file__ = str(ROOT / path)
    sys.modules[module] = mod
    try:
        exec(compile("".join(lines), str(ROOT / path), "exec"), mod.__dict__)
    finally:
        del sys.modules[module]


# ---------------------------------------------------------------------------- the executor (twin)
def test_removing_barrier_from_the_executor_fails_at_import():
    with pytest.raises(ContractError, match=r"^twin\.executor\.HANDLERS: no handler for the to_chip "
                                            r"message\(s\) barrier$"):
        _import_edited("twin/executor.py", "twin._executor_without_barrier", "twin", '"barrier": Executor._barrier')


def test_executor_table_without_a_handler_is_refused():
    from twin import executor
    handlers = {k: v for k, v in executor.HANDLERS.items() if k != "barrier"}
    with pytest.raises(ContractError, match=r"no handler for the to_chip message\(s\) barrier$"):
        executor.dispatch_table(handlers)
    handlers = dict(executor.HANDLERS, barrier=None)
    with pytest.raises(ContractError, match=r"barrier$"):
        executor.dispatch_table(handlers)


def test_a_new_message_without_an_executor_handler_is_refused():
    from twin import executor
    pulse = Message("pulse", Direction.TO_CHIP, 0x0D, (("width", 8),), "A test message.", kind=CONTROL)
    with pytest.raises(ContractError, match=r"no handler for the to_chip message\(s\) pulse$"):
        executor.dispatch_table(executor.HANDLERS, wire.MESSAGES + (pulse,))


def test_a_handler_for_an_unknown_message_is_refused():
    from twin import executor
    handlers = dict(executor.HANDLERS, pulse=executor.Executor._barrier)
    with pytest.raises(ContractError, match=r"handlers for pulse, which is not a to_chip message"):
        executor.dispatch_table(handlers)


def test_a_segment_kind_has_one_handler():
    from twin import executor
    handlers = dict(executor.HANDLERS, omnibus_data=executor.Executor._timed_windows)
    with pytest.raises(ContractError, match=r"omnibus_data is a register access message"):
        executor.dispatch_table(handlers)


def test_executor_dispatch_follows_the_kinds():
    from twin import executor
    category, segment, control = executor.dispatch_table(executor.HANDLERS)
    code = {Kind.REGISTER: executor._REGISTER, Kind.TIMED: executor._TIMED, Kind.CONTROL: executor._CONTROL}
    for m in wire.MESSAGES:
        if m.direction is Direction.TO_CHIP:
            assert category[m.header] == code[m.kind], m.name
        else:
            assert category[m.header] == executor._INVALID, m.name
    assert {wire.BY_HEADER[h].name for h in control} == {"reset", "timer_reset", "system_time_init",
                                                        "barrier", "loopback", "limit"}
    assert segment == {executor._REGISTER: executor.Executor._omnibus_windows,
                       executor._TIMED: executor.Executor._timed_windows}


# ---------------------------------------------------------------------------- the host
def test_removing_a_reader_from_the_host_fails_at_import():
    with pytest.raises(ContractError, match=r"^host\.connection\.READERS: no handler for the to_host "
                                            r"message\(s\) madc_sample$"):
        _import_edited("host/connection.py", "host._connection_without_madc", "host",
                       '"madc_sample": _Reading.madc_samples')


def test_a_new_message_without_a_host_reader_is_refused():
    from host import connection
    note = Message("temperature", Direction.TO_HOST, 0x89, (("value", 16),), "A test message.", kind=NOTICE)
    with pytest.raises(ContractError, match=r"no handler for the to_host message\(s\) temperature$"):
        wire.check_handlers(connection.READERS, Direction.TO_HOST, "host.connection.READERS",
                            wire.MESSAGES + (note,))


def test_the_tables_pass_as_shipped():
    from host import connection
    from twin import executor
    wire.check_handlers(executor.HANDLERS, Direction.TO_CHIP, "executor")
    wire.check_handlers(connection.READERS, Direction.TO_HOST, "host")


# ---------------------------------------------------------------------------- the dictionary
def test_every_message_names_a_kind_of_its_direction():
    for m in wire.MESSAGES:
        assert isinstance(m.kind, Kind)
        assert m.kind.direction is m.direction, m.name
    with pytest.raises(TypeError, match="kind"):
        Message("pulse", Direction.TO_CHIP, 0x0D, (), "no kind")      # kind is required
    with pytest.raises(ValueError, match=r"^pulse: kind <Kind\.NOTICE: 'notice'> is not a Kind of a message "
                                         r"travelling to_chip$"):
        Message("pulse", Direction.TO_CHIP, 0x0D, (), "wrong kind", kind=NOTICE)


def test_field_limits_come_from_the_dictionary():
    assert wire.message("event_loss").limit("dropped") == 2 ** 20 - 1
    assert wire.message("spike").limit("time") == 2 ** 32 - 1
    with pytest.raises(wire.WireError, match=r"^spike has no field 'tag'; fields: label, time$"):
        wire.message("spike").limit("tag")


def test_tick_is_the_clock_period():
    assert wire.FPGA_TICK_S == 8e-9
    assert wire.FPGA_CLOCK_HZ * wire.FPGA_TICK_S == 1.0


def test_the_wire_doc_names_each_message_kind():
    text = (ROOT / "docs" / "wire.md").read_text()
    for m in wire.MESSAGES:
        assert re.search(rf"\| `{m.name}` \| [^|]+ \| {m.kind.value} \|", text), m.name
