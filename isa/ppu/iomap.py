"""The PPU's view of the chip outside its instruction set: the vector-I/O
address spaces that fxvinx/fxvoutx reach, and the firmware runtime convention.

Vector I/O: the effective address EA = (RA|0) + RB selects a space by
EA // io_space_size(slices) and a row half by EA % io_space_size = row*2 + half
(dls 0x0000 / 0x4000 / 0x8000 / 0xC000, BrainScaleS-2 0x0 / 0x4_0000 / 0x8_0000 /
0xC_0000).  Friedmann et al. 2017 (IEEE TBioCAS 11(1)) describe the PPU's vector
access to the synapse weights and correlation readouts on HICANN-DLS; the address
layout above is this project's model of it, not a published memory map.

Runtime: main's return value (r3) is stored at RETURN_CODE_ADDRESS, the word
just below the 4 KiB mailbox at MAILBOX_ADDRESS; then the core executes `wait`
(firmware/crt0.s follows it).
"""

SPACE_WEIGHTS = 0          # synapse weights (6-bit field + calibration bits per byte)
SPACE_LABELS = 1           # synapse address labels
SPACE_CAUSAL = 2           # causal correlation through the column ADC; writes request resets
SPACE_ACAUSAL = 3          # acausal correlation, likewise
SPACES = 4

#: A word load or store whose effective address has this bit set goes to the
#: chip's register bus: EA = REGISTER_BUS_BIT | (register word address << 2).
REGISTER_BUS_BIT = 0x8000_0000

RETURN_CODE_ADDRESS = 0x2FFC
MAILBOX_ADDRESS = 0x3000
MAILBOX_SIZE = 0x1000
STACK_TOP = 0x2FF0         # the runtime's initial stack pointer (the stack grows down)

#: The firmware runtime's mailbox (firmware/runtime.s; host side: firmware.Mailbox):
#: (name, byte offset from MAILBOX_ADDRESS, size in bytes, direction and meaning).
MAILBOX_LAYOUT = (
    ("command", 0x000, 4, "host -> firmware: what to run (MAILBOX_COMMANDS); while a periodic rule "
                          "runs the host may write `stop`"),
    ("updates", 0x004, 4, "firmware -> host: updates done so far"),
    ("period_us", 0x008, 4, "host -> firmware: update period, microseconds of hardware time"),
    ("iterations", 0x00C, 4, "host -> firmware: updates to run (0: until the host writes `stop`)"),
    ("overruns", 0x010, 4, "firmware -> host: updates that started late (the one before took "
                           "longer than the period)"),
    ("state", 0x014, 4, "firmware -> host: 1 from reset until main returns (sleeping between updates "
                        "included), 2 after"),
    ("params", 0x040, 0x0C0, "host -> firmware: the rule's parameters (32-bit words, firmware.RULES)"),
    ("results", 0x100, 0x300, "firmware -> host: the rule's results (32-bit words)"),
    ("data", 0x400, 0xC00, "tables either way: per-synapse offsets to the rule, readouts to the host"),
)
MAILBOX_COMMANDS = {"none": 0, "once": 1, "periodic": 2, "stop": 3}
MAILBOX_STATES = {"running": 1, "done": 2}
#: main's return values in the runtime's convention (any other value is the rule's own).
RETURN_CODES = {"ok": 0, "bad_command": 1, "bad_parameter": 2}


#: Cycles an interrupt entry takes (save SRR0/1, clear MSR bits, fetch from the
#: vector) before the first instruction of the handler.  A model choice: the nux
#: RTL takes the interrupt in its pipeline; what matters here is that entry costs
#: time, so that a handler that faults again (an illegal word at its vector)
#: uses up the cycle budget instead of spinning at no cost.
INTERRUPT_ENTRY_CYCLES = 3


def io_space_size(slices: int) -> int:
    """Size of one vector-I/O space: 0x4000 with one slice (dls), 0x4_0000 with eight (hx)."""
    return 0x4000 if slices == 1 else 0x4_0000

#: Why the core is not running instructions: the `debug_stop.reason` register
#: field of the PPU block (isa/regmap/_blocks.py), read by host.PPU.  The fault
#: reasons are taken only when no interrupt vector is installed.  11: the core
#: runs but takes the same interrupts for ever without retiring an instruction
#: (a handler that faults at its vector); `debug_fault` holds that vector.
STOP_REASONS = {
    0: "running",
    1: "sleeping",
    2: "program interrupt (illegal instruction or SPR)",
    3: "trap",
    4: "alignment interrupt (misaligned access)",
    5: "machine check (access outside memory or a rejected register-bus access)",
    6: "unimplemented instruction",
    9: "decrementer interrupt",
    10: "halted",
    11: "stuck in interrupt entry (the handler faults before an instruction retires)",
    12: "fixed-interval timer interrupt",
    13: "external-input interrupt (a general-purpose input pin)",
    14: "doorbell interrupt",
}
STOP_SLEEPING = 1
STOP_FAULTS = (2, 3, 4, 5, 6, 9, 12, 13, 14)
STOP_HALTED = 10
STOP_INTERRUPT_LOOP = 11
