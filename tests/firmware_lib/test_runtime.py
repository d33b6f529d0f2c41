"""The firmware runtime: crt0's sleep_until, the rule loop's commands, periods
and stop, and parameters rewritten while a rule runs, on a chip through the
host library."""
from __future__ import annotations

import numpy as np
import pytest

import firmware
import host
from isa.ppu.asm import assemble
from isa.ppu.iomap import MAILBOX_ADDRESS, RETURN_CODE_ADDRESS
from twin.ppu import interp as I

PARAMS = dict(theta=2, lambda_pos=40, lambda_neg=20, w_max=63, offset_stride=0)


def _memory_with(main: str) -> np.ndarray:
    """PPU memory holding crt0 and `main` (dls constants)."""
    fw = firmware.FIRMWARE_DIR
    prog = assemble([("<t>", '    .include "include/dls.inc"\n'), (str(fw / "crt0.s"), (fw / "crt0.s").read_text()),
                     ("<main>", main)], include_dirs=[str(fw)])
    mem = np.zeros(16384, np.uint8)
    img = prog.image()
    mem[:len(img)] = np.frombuffer(img, np.uint8)
    return mem


def _run_hw(conn, seconds):
    prog = conn.program()
    prog.timer_reset()
    prog.wait_until(int(round(seconds / 8e-9)))
    conn.run(prog)


def test_sleep_until_returns_for_every_distance_including_past_and_a_few_cycles():
    """A target a few cycles ahead can expire before the `wait`: the decrementer
    handler must skip that `wait` instead of sleeping with nothing to wake it."""
    main = """
    .text
    .globl main
main:
    mflr r20
    li r21, -8                  # distance to the target, cycles
    li r22, 0                   # calls that found the time passed (returned 1)
    li r24, 0                   # calls that returned before their target
1:  mftb r23
    add r23, r23, r21           # the target
    mr r3, r23
    bl sleep_until
    add r22, r22, r3
    mftb r4
    subf r4, r23, r4            # now - target: must not be negative
    cmpwi r4, 0
    bge 2f
    addi r24, r24, 1
2:  addi r21, r21, 1
    cmpwi r21, 60
    blt 1b
    slwi r3, r24, 16
    or r3, r3, r22
    mtlr r20
    blr
"""
    mem = _memory_with(main)
    st = I.new_state()
    assert I.run(mem, st, 10 ** 6) == I.Status.SLEEPING       # every call returned: main finished
    rc = int.from_bytes(mem[RETURN_CODE_ADDRESS:RETURN_CODE_ADDRESS + 4].tobytes(), "big")
    early, passed = rc >> 16, rc & 0xFFFF
    assert early == 0
    # targets at or before the call's own time-base read (a few cycles after main's) report 1
    assert 8 <= passed <= 16


@pytest.mark.parametrize("cycles", [0, 1, 7, 100, 12345])
def test_wait_cycles_waits_at_least_that_long(cycles):
    main = f"""
    .text
    .globl main
main:
    mflr r20
    mftb r21
    lis r3, {cycles}@h
    ori r3, r3, {cycles}@l
    bl wait_cycles
    mftb r3
    subf r3, r21, r3
    mtlr r20
    blr
"""
    mem = _memory_with(main)
    assert I.run(mem, I.new_state(), 10 ** 6) == I.Status.SLEEPING
    elapsed = int.from_bytes(mem[RETURN_CODE_ADDRESS:RETURN_CODE_ADDRESS + 4].tobytes(), "big")
    assert cycles <= elapsed <= cycles + 16            # one pass of the polling loop late at most


def test_periodic_updates_overruns_and_stop_on_dls():
    with host.connect("twin:dls") as conn:
        rule = firmware.RuleOnChip(conn, "stdp_mult")
        rule.start("periodic", period_us=200, **PARAMS)      # one update takes about 100 us on dls
        _run_hw(conn, 1e-3)
        assert rule.updates() == [5] and rule.overruns() == [0] and rule.done() == [False]
        rule.stop()
        assert rule.done() == [True] and rule.updates() == [6]
        rule.start("periodic", period_us=50, **PARAMS)       # shorter than an update: each one is late
        _run_hw(conn, 1e-3)
        (n,), (late,) = rule.updates(), rule.overruns()
        assert 9 <= n <= 11 and late == n
        rule.stop()


def test_iterations_end_the_rule_and_bad_parameters_raise():
    with host.connect("twin:dls") as conn:
        rule = firmware.RuleOnChip(conn, "stdp_mult")
        rule.start("periodic", period_us=150, iterations=3, **PARAMS)
        rule.wait(timeout_hw_seconds=1e-3)
        assert rule.updates() == [3]
        rule.start("once", **PARAMS)
        rule.wait(timeout_hw_seconds=1e-3)
        assert rule.updates() == [1]
        ppu = rule.ppus[0]
        ppu.load(rule.image)
        mb = bytearray(firmware.mailbox("stdp_mult", "dls", **PARAMS))
        at = firmware.field("params")[0] - MAILBOX_ADDRESS
        mb[at:at + 4] = (300).to_bytes(4, "big")              # theta past its range, written raw
        ppu.write_memory(MAILBOX_ADDRESS, bytes(mb))
        ppu.start()
        with pytest.raises(firmware.RuleError, match="PPU 0 returned 2 .bad_parameter."):
            rule.wait(timeout_hw_seconds=1e-3)


def test_both_hx_ppus_run_the_rule_on_their_arrays():
    with host.connect("twin:hx") as conn:
        rule = firmware.RuleOnChip(conn, "stdp_mult")
        assert rule.indices == [0, 1]
        rule.start("periodic", period_us=3000, iterations=2, **PARAMS)
        rule.wait(timeout_hw_seconds=10e-3)
        assert rule.updates() == [2, 2]


def test_set_rewrites_a_parameter_while_the_rule_runs():
    params = dict(theta=0, eta=127, w_min=0, w_max=63, offset_stride=0)
    with host.connect("twin:dls") as conn:
        rule = firmware.RuleOnChip(conn, "stdp_reward")
        rule.start("periodic", period_us=200, reward=0, **params)
        _run_hw(conn, 1e-3)
        rule.set(reward=-100)
        at, word = firmware.param_word("stdp_reward", "dls", "reward", -100)
        assert rule.ppus[0].read_memory(at, 4) == word == b"\xff\xff\xff\x9c"
        before = rule.updates()[0]
        _run_hw(conn, 1e-3)
        assert rule.updates()[0] > before and rule.done() == [False]
        with pytest.raises(ValueError, match="reward = 200 out of range"):
            rule.set(reward=200)
        with pytest.raises(ValueError, match="reward has 2 values for 1 PPUs"):
            rule.set(reward=[1, 2])
        rule.stop()
