"""Plain-Python reference for the PPU interpreter (tests only).

Same semantics and state layout as `interp` (see its docstring for the chosen
undefined results, interrupts, sleep, register-bus exits, the vector unit and
stop statuses), written independently over Python ints and bytes; only the
predecode of a single word (`_decode`) is shared.  Every fetch decodes the
word in memory, so stores into code need no bookkeeping here.  Slow: for
differential tests.
"""
from __future__ import annotations

import numpy as np

from isa.ppu.core import (FIT_BITS, GPIO_INTERRUPT_PINS, ICCR_MASK_SHIFT, ICCR_SENSE_SHIFT, ICCR_TRIGGER_SHIFT,
                          MSR_CE, MSR_DE, MSR_DS, MSR_EE, MSR_IS, MSR_ME, SPR_DEC, SPR_DECAR, SPR_TBL, SPR_TBU,
                          SPR_TCR, SPR_TSR, SPR_UNSTORED, TCR_ARE, TCR_DIE, TCR_FIE, TCR_FP_SHIFT, TSR_DIS, TSR_FIS,
                          VECTORS)
from isa.ppu.iomap import INTERRUPT_ENTRY_CYCLES, REGISTER_BUS_BIT

from . import interp as I
from ._decode import FLAG_AA, FLAG_LK, FLAG_OE, FLAG_RC, OP_ILLEGAL, OPS, predecode_words

__all__ = ["run", "drive_pins", "doorbell_edge"]

M = 0xFFFFFFFF
M64 = (1 << 64) - 1


def _s64(x: int) -> int:
    x &= M64
    return x - (1 << 64) if x >> 63 else x


def _signed(x: int) -> int:
    x &= M
    return x - (1 << 32) if x >> 31 else x


def _mask(mb: int, me: int) -> int:
    bits = [(mb <= i <= me) if mb <= me else (i >= mb or i <= me) for i in range(32)]
    return sum(1 << (31 - i) for i, b in enumerate(bits) if b)


class _Stop(Exception):
    def __init__(self, status: int, fault: int):
        self.status, self.fault = status, fault


class _Fault(Exception):
    """An interrupt cause raised by an instruction (vectored or stopping)."""

    def __init__(self, status: int, addr: int, esr: int = 0):
        self.status, self.addr, self.esr = status, addr, esr


class _Wait(Exception):
    pass


class _Bus(Exception):
    pass


class _TimerWrite(Exception):
    """mtspr to a timer SPR: it lands in the last edge of the instruction."""

    def __init__(self, n: int, v: int):
        self.n, self.v = n, v


_EXTRA = ("S_TB_OFFSET", "S_SLEEP", "S_BUS_ADDR", "S_BUS_DATA", "S_BUS_WRITE",
          "S_BUS_RT", "S_WAIT_CYCLES", "S_ENTRY_INSNS", "S_ENTRY_SEEN", "S_ENTRY_LOOP",
          "S_GIN", "S_ICCR", "S_IRQ")
# MSR bits that keep what is written (write_back.sv: CM, PR, FP and reserved read 0);
# interrupt entry keeps CE, ME and DE (int_sched.sv msr_set_base).
_MSR_STORED = MSR_CE | MSR_EE | MSR_ME | MSR_DE | MSR_IS | MSR_DS
_ENTRY_KEEPS = MSR_CE | MSR_ME | MSR_DE
# ESR bits that keep what is written (struct Esr without DLK and the reserved bits).
_ESR_STORED = sum(1 << (31 - k) for k in (4, 5, 6, 7, 8, 12, 13, 14, 15, 21, 22, 23, 24, 25, 26, 30))
_PIN_EDGE, _PIN_LEVEL, _DOORBELL = I.IRQ_EDGE, I.IRQ_LEVEL, I.IRQ_DOORBELL      # the S_IRQ layout


def _pin_requests(gin: int, iccr: int, old: int | None = None) -> tuple[bool, bool]:
    """(level request now, edge from `old`) of the interrupting pins, pin by
    pin as interrupt_ctrl.sv's generate loop does."""
    level = edge = False
    for i in range(GPIO_INTERRUPT_PINS):
        if not (iccr >> (ICCR_MASK_SHIFT + i)) & 1:
            continue
        t = (iccr >> (ICCR_TRIGGER_SHIFT + i)) & 1
        now = (gin >> i) & 1
        if (iccr >> (ICCR_SENSE_SHIFT + i)) & 1:
            level |= now != t
        elif old is not None:
            before = (old >> i) & 1
            edge |= before == t and now != t            # rising for t = 0, falling for t = 1
    return level, edge


def drive_pins(state: np.ndarray, pins: int) -> None:
    """Same contract as `interp.drive_pins`."""
    pins &= M
    level, edge = _pin_requests(pins, int(state[I.S_ICCR]), int(state[I.S_GIN]))
    irq = int(state[I.S_IRQ]) & _PIN_EDGE | int(state[I.S_IRQ]) & _DOORBELL
    if edge and state[I.S_MSR] & MSR_EE:
        irq |= _PIN_EDGE
    state[I.S_GIN], state[I.S_IRQ] = pins, irq | (_PIN_LEVEL if level else 0)


def doorbell_edge(state: np.ndarray) -> None:
    """Same contract as `interp.doorbell_edge`."""
    if state[I.S_MSR] & MSR_EE:
        state[I.S_IRQ] = int(state[I.S_IRQ]) | _DOORBELL
_VECTOR_OF = {I.Status.BUS_ERROR: VECTORS["machine_check"], I.Status.ALIGNMENT: VECTORS["alignment"],
              I.Status.PROGRAM: VECTORS["program"], I.Status.TRAP: VECTORS["program"],
              I.Status.UNIMPLEMENTED: VECTORS["program"], I.Status.DECREMENTER: VECTORS["decrementer"],
              I.Status.FIT: VECTORS["fixed_interval_timer"], I.Status.EXTERNAL: VECTORS["external_input"],
              I.Status.DOORBELL: VECTORS["doorbell"]}


class _Machine:
    def __init__(self, mem: np.ndarray, st: np.ndarray, vec: np.ndarray, io):
        self.mem, self.st, self.vec, self.io = mem, st, vec, io
        self.r = [int(v) for v in st[:32]]
        self.cr, self.xer, self.lr, self.ctr, self.msr = (int(st[i]) for i in range(32, 37))
        self.spr = {n: int(st[i]) for n, i in I.SPR_INDEX.items() if n not in (1, 8, 9)}
        self.pc, self.cycles, self.insns = int(st[I.S_PC]), int(st[I.S_CYCLES]), int(st[I.S_INSNS])
        self.x = {name: int(st[getattr(I, name)]) for name in _EXTRA}
        self.nb = len(vec) // 35
        nb = self.nb
        self.vr = [bytearray(vec[k * nb:(k + 1) * nb].tobytes()) for k in range(32)]
        self.acc = bytearray(vec[32 * nb:34 * nb].tobytes())
        self.flags = bytearray(vec[34 * nb:35 * nb].tobytes())

    def save(self, fault: int):
        st = self.st
        st[:32] = self.r
        st[32:37] = [self.cr, self.xer, self.lr, self.ctr, self.msr]
        for n, i in I.SPR_INDEX.items():
            if n not in (1, 8, 9):
                st[i] = self.spr[n]
        level, _ = _pin_requests(self.x["S_GIN"], self.x["S_ICCR"])
        self.x["S_IRQ"] = self.x["S_IRQ"] & ~_PIN_LEVEL | (_PIN_LEVEL if level else 0)
        for name, v in self.x.items():
            st[getattr(I, name)] = v
        st[I.S_PC], st[I.S_CYCLES], st[I.S_INSNS], st[I.S_FAULT] = (
            self.pc, self.cycles, self.insns, fault)
        self.vec[:] = np.frombuffer(b"".join(self.vr) + bytes(self.acc) + bytes(self.flags), np.uint8)

    # -- time, interrupts, sleep
    def retire(self, cost: int):
        self.charge(cost)
        self.insns += 1

    def take(self, status: int, pc: int, addr: int, esr: int = 0):
        """Vector the interrupt, or raise _Stop when it has no vector."""
        vector = _VECTOR_OF[status]
        installed = self.load(vector, 4) != 0
        if status == I.Status.BUS_ERROR and not self.msr & I.MSR_ME:
            installed = False
        if not installed:
            raise _Stop(status, addr)
        if status == I.Status.BUS_ERROR:
            self.spr[570], self.spr[571] = pc, self.msr
            self.msr &= _ENTRY_KEEPS & ~MSR_ME
            self.spr[61] = addr
        else:
            self.spr[26], self.spr[27] = pc, self.msr
            self.msr &= _ENTRY_KEEPS
            if status == I.Status.UNIMPLEMENTED:
                self.spr[62] = 1 << (31 - 13)             # ESR[PUO] (Power ISA bit 45)
            elif status == I.Status.ALIGNMENT:
                self.spr[62] = 0                           # int_sched.sv: ESR = 0, DEAR as it was
            elif status in (I.Status.PROGRAM, I.Status.TRAP):
                self.spr[62] = esr
        self.x["S_IRQ"] &= _PIN_LEVEL                      # EE is clear: the latches clear
        self.pc = vector
        # Stuck in interrupt entry: the same (vector, MSR[ME]) entered twice
        # since the last retired instruction.
        x = self.x
        if x["S_ENTRY_INSNS"] != self.insns:
            x["S_ENTRY_INSNS"], x["S_ENTRY_SEEN"], x["S_ENTRY_LOOP"] = self.insns, 0, 0
        bit = 1 << (vector // 2 + (1 if self.msr & I.MSR_ME else 0))     # the layout of interp
        if x["S_ENTRY_SEEN"] & bit and not x["S_ENTRY_LOOP"]:
            x["S_ENTRY_LOOP"] = vector
        x["S_ENTRY_SEEN"] |= bit
        self.charge(INTERRUPT_ENTRY_CYCLES)

    # The timer unit, one clock edge at a time (nux RTL timer_unit.sv); the
    # loop is bounded by the cycles that pass, so long sleeps go in strides.
    def tb(self) -> int:
        return (self.cycles + self.x["S_TB_OFFSET"]) & M64

    def edge(self, write: int | None = None, v: int = 0):
        """One clock edge, with an mtspr to timer SPR `write` of v landing in it."""
        tsr, tcr, dec, decar = self.spr[SPR_TSR], self.spr[SPR_TCR], self.spr[SPR_DEC], self.spr[SPR_DECAR]
        tb = self.tb()
        fit_bit = FIT_BITS[(tcr >> TCR_FP_SHIFT) & 3]
        n_tsr, n_tb = tsr, (tb + 1) & M64
        if dec == 1:
            n_tsr |= TSR_DIS
            n_dec = decar if tcr & TCR_ARE else 0
        else:
            n_dec = max(dec - 1, 0)
        if write == SPR_TBL:
            n_tb = (n_tb & ~M) | v
        elif write == SPR_TBU:
            n_tb = (v << 32) | (n_tb & M)
        elif write == SPR_DEC:
            n_dec = v
        elif write == SPR_DECAR:
            self.spr[SPR_DECAR] = v
        elif write == SPR_TCR:
            self.spr[SPR_TCR] = v
        elif write == SPR_TSR:
            n_tsr = tsr & ~v & M
        if (n_tb >> fit_bit) & 1 and not (tb >> fit_bit) & 1:
            n_tsr |= TSR_FIS
        self.cycles += 1
        self.x["S_TB_OFFSET"] = _s64(n_tb - self.cycles)
        self.spr[SPR_DEC], self.spr[SPR_TSR] = n_dec, n_tsr

    def charge(self, cost: int):
        """`cost` cycles pass (an instruction's, interrupt entry, sleep)."""
        while cost > 0:
            quiet = self.quiet_edges()
            if quiet >= cost:           # nothing but counting: in one stride
                self.cycles += cost
                if self.spr[SPR_DEC]:
                    self.spr[SPR_DEC] -= cost
                return
            if quiet > 0:
                self.cycles += quiet
                if self.spr[SPR_DEC]:
                    self.spr[SPR_DEC] -= quiet
                cost -= quiet
            self.edge()
            cost -= 1

    def quiet_edges(self) -> int:
        """Edges from now in which the timer unit only counts (DEC not at 1,
        no TBL rise of the FIT bit while TSR.FIS is clear)."""
        q = 1 << 62
        if self.spr[SPR_DEC] > 0:
            q = self.spr[SPR_DEC] - 1
        if not self.spr[SPR_TSR] & TSR_FIS:
            bit = FIT_BITS[(self.spr[SPR_TCR] >> TCR_FP_SHIFT) & 3]
            tb = self.tb()
            rise = ((1 << bit) - tb) % (2 << bit) or (2 << bit)    # next tb + k = 2^bit mod 2^(bit+1)
            q = min(q, rise - 1)
        return q

    def timer_write(self, n: int, v: int, cost: int):
        self.charge(cost - 1)
        self.edge(n, v)

    def set_msr(self, v: int):
        self.msr = v & _MSR_STORED
        if not self.msr & MSR_EE:
            self.x["S_IRQ"] &= _PIN_LEVEL

    def async_request(self) -> int | None:
        """The interrupt to take with MSR[EE] set (int_sched.sv order)."""
        level, _ = _pin_requests(self.x["S_GIN"], self.x["S_ICCR"])
        if level or self.x["S_IRQ"] & _PIN_EDGE:
            return I.Status.EXTERNAL
        t = self.timer_request()
        if t:
            return t
        return I.Status.DOORBELL if self.x["S_IRQ"] & _DOORBELL else None

    def timer_request(self) -> int | None:
        tsr, tcr = self.spr[SPR_TSR], self.spr[SPR_TCR]
        if tcr & TCR_FIE and tsr & TSR_FIS:
            return I.Status.FIT
        if tcr & TCR_DIE and tsr & TSR_DIS:
            return I.Status.DECREMENTER
        return None

    def sleep(self, max_cycles: int, advances: bool) -> bool:
        """True when a timer request wakes the sleeping core (interrupt_ctrl.sv:
        regardless of MSR[EE]); edge by edge in strides of quiet edges."""
        while True:
            if self.timer_request() or (self.msr & MSR_EE and self.async_request()):
                if self.cycles <= max_cycles:
                    self.x["S_SLEEP"] = 0
                    return True
                break
            tcr = self.spr[SPR_TCR]
            can = (tcr & TCR_DIE and self.spr[SPR_DEC] > 0) or tcr & TCR_FIE
            if self.cycles >= max_cycles or not can:
                break
            self.charge(min(max(self.quiet_edges(), 1), max_cycles - self.cycles))
        if advances and self.cycles < max_cycles:
            self.charge(max_cycles - self.cycles)
        return False

    # -- flags
    @property
    def ca(self) -> int:
        return (self.xer >> 29) & 1

    def set_ca(self, v):
        self.xer = (self.xer & ~I.XER_CA & M) | (I.XER_CA if v else 0)

    def set_ov(self, v):
        self.xer = (self.xer & ~I.XER_OV & M) | ((I.XER_OV | I.XER_SO) if v else 0)

    def crfield(self, bf: int, a: int, b: int):
        c = (8 if a < b else 4 if a > b else 2) | (self.xer >> 31)
        shift = 4 * (7 - bf)
        self.cr = (self.cr & ~(0xF << shift) & M) | (c << shift)

    def record(self, value: int):
        self.crfield(0, _signed(value), 0)

    def crbit(self, b: int) -> int:
        return (self.cr >> (31 - b)) & 1

    # -- memory
    def access(self, ea: int, size: int, align: int, store: bool = False) -> int:
        ea &= M
        if ea % align or (ea >> 31 and size != 4):
            raise _Fault(I.Status.ALIGNMENT, ea)
        if ea >> 31:
            return ea
        if ea + size > len(self.mem):
            raise _Fault(I.Status.BUS_ERROR, ea)
        return ea

    def bus(self, ea: int, store: bool, rt: int, ra: int | None):
        """Leave the run for a register-bus access (the instruction retires)."""
        self.x.update(S_BUS_ADDR=(ea & ~REGISTER_BUS_BIT & M) >> 2, S_BUS_WRITE=int(store),
                      S_BUS_DATA=self.r[rt] if store else 0, S_BUS_RT=rt)
        if ra is not None:
            self.r[ra] = ea
        raise _Bus()

    def load(self, ea: int, size: int) -> int:
        return int.from_bytes(self.mem[ea:ea + size].tobytes(), "big")

    def store(self, ea: int, size: int, v: int):
        self.mem[ea:ea + size] = np.frombuffer((v & ((1 << 8 * size) - 1)).to_bytes(size, "big"),
                                               np.uint8)


# name -> (size, is_load, sign-extend, update); the X-forms add "x" to the name.
_LOAD_STORE = {n: (sz, ld, sg, upd) for n, sz, ld, sg, upd in (
    ("lwz", 4, 1, 0, 0), ("lwzu", 4, 1, 0, 1), ("lbz", 1, 1, 0, 0), ("lbzu", 1, 1, 0, 1),
    ("stw", 4, 0, 0, 0), ("stwu", 4, 0, 0, 1), ("stb", 1, 0, 0, 0), ("stbu", 1, 0, 0, 1),
    ("lhz", 2, 1, 0, 0), ("lhzu", 2, 1, 0, 1), ("lha", 2, 1, 1, 0), ("lhau", 2, 1, 1, 1),
    ("sth", 2, 0, 0, 0), ("sthu", 2, 0, 0, 1))}
_LOAD_STORE_X = {n + "x": v for n, v in _LOAD_STORE.items()}

_LOGICAL = {
    "and": lambda s, b: s & b, "andc": lambda s, b: s & ~b, "nor": lambda s, b: ~(s | b),
    "eqv": lambda s, b: ~(s ^ b), "xor": lambda s, b: s ^ b, "orc": lambda s, b: s | ~b,
    "or": lambda s, b: s | b, "nand": lambda s, b: ~(s & b),
}
_CRLOGIC = {
    "crnor": lambda a, b: not (a or b), "crandc": lambda a, b: a and not b,
    "crxor": lambda a, b: a != b, "crnand": lambda a, b: not (a and b),
    "crand": lambda a, b: a and b, "creqv": lambda a, b: a == b,
    "crorc": lambda a, b: a or not b, "cror": lambda a, b: a or b,
}
# (x is ~RA?, y: "rb" | 0 | -1, carry-in: 0 | 1 | "ca", sets CA?)
_ADDS = {
    "add": (False, "rb", 0, False), "addc": (False, "rb", 0, True),
    "adde": (False, "rb", "ca", True), "addze": (False, 0, "ca", True),
    "addme": (False, -1, "ca", True), "subf": (True, "rb", 1, False),
    "subfc": (True, "rb", 1, True), "subfe": (True, "rb", "ca", True),
    "subfze": (True, 0, "ca", True), "subfme": (True, -1, "ca", True),
    "neg": (True, 0, 1, False),
}


def _step(m: _Machine, row) -> int | None:
    """Execute one decoded row; return the next pc, or raise _Stop."""
    op, fl, _, *f = (int(x) for x in row)
    pc, npc = m.pc, (m.pc + 4) & M
    if op < 0:
        raise _Fault(I.Status.PROGRAM if op == OP_ILLEGAL else I.Status.UNIMPLEMENTED, pc, 0x08000000)
    name = OPS[op]
    r = m.r
    rc = fl & FLAG_RC

    def res(t, v):
        r[t] = v & M
        if rc:
            m.record(r[t])

    if name in ("addi", "addis"):
        r[f[0]] = ((r[f[1]] if f[1] else 0) + (f[2] << (16 if name == "addis" else 0))) & M
    elif name in ("addic", "addic.", "subfic"):
        x = (~r[f[1]] & M) if name == "subfic" else r[f[1]]
        s = x + (f[2] & M) + (name == "subfic")
        r[f[0]] = s & M
        m.set_ca(s >> 32)
        if name == "addic.":
            m.record(r[f[0]])
    elif name == "mulli":
        r[f[0]] = (_signed(r[f[1]]) * f[2]) & M
    elif name in ("ori", "oris", "xori", "xoris", "andi.", "andis."):
        imm = f[2] << (16 if name.rstrip(".").endswith("s") else 0)
        fn = {"o": lambda a: a | imm, "x": lambda a: a ^ imm, "a": lambda a: a & imm}[name[0]]
        r[f[0]] = fn(r[f[1]])
        if name.endswith("."):
            m.record(r[f[0]])
    elif name in ("cmp", "cmpi", "cmpl", "cmpli"):
        b = r[f[3]] if name in ("cmp", "cmpl") else f[3] & M
        a = r[f[2]]
        if name in ("cmp", "cmpi"):
            a, b = _signed(a), _signed(b)
        m.crfield(f[0], a, b)
    elif name in ("tw", "twi"):
        a, b = r[f[1]], (r[f[2]] if name == "tw" else f[2] & M)
        sa, sb = _signed(a), _signed(b)
        conds = (sa < sb, sa > sb, a == b, a < b, a > b)
        if any(c and f[0] & (16 >> k) for k, c in enumerate(conds)):
            m.retire(int(row[2]))
            raise _Fault(I.Status.TRAP, pc, 0x02000000)
    elif name in _LOAD_STORE or name in _LOAD_STORE_X:
        indexed = name in _LOAD_STORE_X
        size, is_load, sgn, upd = (_LOAD_STORE_X if indexed else _LOAD_STORE)[name]
        if indexed:
            ra, ea = f[1], (r[f[1]] if f[1] else 0) + r[f[2]]
        else:
            ra, ea = f[2], (r[f[2]] if f[2] else 0) + f[1]
        ea = m.access(ea, size, size, not is_load)
        if ea >> 31:
            m.bus(ea, not is_load, f[0], ra if upd else None)
        if is_load:
            v = m.load(ea, size)
            if sgn and v & 0x8000:
                v -= 0x10000
            r[f[0]] = v & M
        else:
            m.store(ea, size, r[f[0]])
        if upd:
            r[ra] = ea
    elif name in ("lmw", "stmw"):
        ea = m.access((r[f[2]] if f[2] else 0) + f[1], 4 * (32 - f[0]), 4, name == "stmw")
        if ea >> 31:
            m.bus(ea, name == "stmw", f[0], None)
        for k, reg in enumerate(range(f[0], 32)):
            if name == "lmw":
                r[reg] = m.load(ea + 4 * k, 4)
            else:
                m.store(ea + 4 * k, 4, r[reg])
    elif name == "b":
        tgt = (f[0] * 4 + (0 if fl & FLAG_AA else pc)) & M
        if fl & FLAG_LK:
            m.lr = npc
        npc = tgt
    elif name in ("bc", "bclr", "bcctr"):
        bo, bi = f[0], f[1]
        if name != "bcctr" and not bo & 4:
            m.ctr = (m.ctr - 1) & M
        ctr_ok = bool(bo & 4) or name == "bcctr" or ((m.ctr != 0) ^ bool(bo & 2))
        cond_ok = bool(bo & 16) or m.crbit(bi) == (bo >> 3) & 1
        tgt = {"bc": lambda: (f[2] * 4 + (0 if fl & FLAG_AA else pc)) & M,
               "bclr": lambda: m.lr & ~3, "bcctr": lambda: m.ctr & ~3}[name]()
        if fl & FLAG_LK:
            m.lr = npc
        if ctr_ok and cond_ok:
            npc = tgt
    elif name in ("rlwinm", "rlwnm", "rlwimi"):
        n = r[f[2]] % 32 if name == "rlwnm" else f[2]
        s = r[f[1]]
        rot = ((s << n) | (s >> (32 - n))) & M if n else s
        mk = _mask(f[3], f[4])
        res(f[0], (rot & mk) | (r[f[0]] & ~mk if name == "rlwimi" else 0))
    elif name == "mcrf":
        v = (m.cr >> (4 * (7 - f[1]))) & 0xF
        sh = 4 * (7 - f[0])
        m.cr = (m.cr & ~(0xF << sh) & M) | (v << sh)
    elif name in _CRLOGIC:
        t = bool(_CRLOGIC[name](m.crbit(f[1]) == 1, m.crbit(f[2]) == 1))
        sh = 31 - f[0]
        m.cr = (m.cr & ~(1 << sh) & M) | (int(t) << sh)
    elif name in ("rfi", "rfci", "rfmci"):
        s0, s1 = {"rfi": (26, 27), "rfci": (58, 59), "rfmci": (570, 571)}[name]
        npc = m.spr[s0] & ~3
        m.set_msr(m.spr[s1])
    elif name in _LOGICAL:
        res(f[0], _LOGICAL[name](r[f[1]], r[f[2]]))
    elif name in ("slw", "srw"):
        n = r[f[2]] & 63
        res(f[0], 0 if n > 31 else (r[f[1]] << n if name == "slw" else r[f[1]] >> n))
    elif name in ("sraw", "srawi"):
        n = min(r[f[2]] & 63, 32) if name == "sraw" else f[2]
        s = _signed(r[f[1]])
        m.set_ca(s < 0 and (s & ((1 << n) - 1)) != 0)
        res(f[0], s >> n)
    elif name == "cntlzw":
        res(f[0], 32 - r[f[1]].bit_length())
    elif name in ("extsb", "extsh"):
        bits = 8 if name == "extsb" else 16
        v = r[f[1]] & ((1 << bits) - 1)
        res(f[0], v - (1 << bits) if v >> (bits - 1) else v)
    elif name == "popcntb":
        s = r[f[1]]
        r[f[0]] = sum(bin((s >> (8 * k)) & 0xFF).count("1") << (8 * k) for k in range(4))
    elif name == "prtyw":
        s = r[f[1]]
        r[f[0]] = sum((s >> (8 * k)) & 1 for k in range(4)) & 1
    elif name == "wait":
        raise _Wait()
    elif name == "mfmsr":
        r[f[0]] = m.msr
    elif name == "mtmsr":
        m.set_msr(r[f[0]])
    elif name == "sync":
        pass
    elif name in _ADDS or name in ("mullw", "mulhw", "mulhwu", "divw", "divwu"):
        a, b = r[f[1]], r[f[2]]
        ov = False
        if name in _ADDS:
            inv, y, cin, sets_ca = _ADDS[name]
            x = (~a & M) if inv else a
            y = b if y == "rb" else y & M
            cin = m.ca if cin == "ca" else cin
            total = x + y + cin
            v = total & M
            # Signed overflow: the exact signed sum differs from the wrapped one.
            ov = _signed(x) + _signed(y) + cin != _signed(v)
            if sets_ca:
                m.set_ca(total >> 32)
        elif name == "mullw":
            p = _signed(a) * _signed(b)
            v, ov = p & M, p != _signed(p)
        elif name == "mulhw":
            v = (_signed(a) * _signed(b)) >> 32
        elif name == "mulhwu":
            v = (a * b) >> 32
        elif name == "divwu":
            v, ov = (a, True) if b == 0 else (a // b, False)
        else:
            sa, sb = _signed(a), _signed(b)
            if sb == 0 or (sa, sb) == (-(1 << 31), -1):
                v, ov = a, True
            else:
                q = abs(sa) // abs(sb)
                v = q if (sa < 0) == (sb < 0) else -q
        r[f[0]] = v & M
        if fl & FLAG_OE:
            m.set_ov(ov)
        if rc:
            m.record(r[f[0]])
    elif name in ("mfcr", "mfocrf", "mtcrf", "mtocrf"):
        fxm = 0xFF if name == "mfcr" else f[1] if name == "mfocrf" else f[0]
        mk = sum(0xF << (4 * (7 - k)) for k in range(8) if fxm & (0x80 >> k))
        if name.startswith("mf"):
            r[f[0]] = m.cr & mk
        else:
            m.cr = (m.cr & ~mk & M) | (r[f[1]] & mk)
    elif name in ("mfspr", "mtspr"):
        raw = f[1] if name == "mfspr" else f[0]
        n = ((raw & 0x1F) << 5) | (raw >> 5)
        if name == "mfspr":
            t = m.tb()
            tb = {268: t & M, 284: t & M, 269: t >> 32, 285: t >> 32}
            named = {1: m.xer, 8: m.lr, 9: m.ctr, 65: m.x["S_GIN"]}
            if n in SPR_UNSTORED.values() or n == 68:      # no register, or ICCR (write-only)
                r[f[0]] = 0
            elif n in tb:
                r[f[0]] = tb[n] & M
            elif n in named:
                r[f[0]] = named[n]
            elif n in m.spr:
                r[f[0]] = m.spr[n]
            else:
                raise _Fault(I.Status.PROGRAM, pc, 0x08000000)
        else:
            v = r[f[1]]
            if n in (SPR_DEC, SPR_DECAR, SPR_TBL, SPR_TBU, SPR_TCR, SPR_TSR):
                raise _TimerWrite(n, v)
            elif n == 1:
                m.xer = v & I.XER_MASK
            elif n == 8:
                m.lr = v
            elif n == 9:
                m.ctr = v
            elif n == 62:
                m.spr[62] = v & _ESR_STORED
            elif n == 68:
                m.x["S_ICCR"] = v
            elif n == 65 or n in SPR_UNSTORED.values():
                pass                                       # GIN is read-only; the others have no register
            elif n in m.spr:
                m.spr[n] = v
            else:
                raise _Fault(I.Status.PROGRAM, pc, 0x08000000)
    elif name.startswith("fxv"):
        _vstep(m, name, f)
    else:  # pragma: no cover - _decode checks every op has a name here
        raise AssertionError(name)
    return npc


# ---- vector unit ---------------------------------------------------------------

def _sat(x: int, bits: int) -> int:
    return max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, x))


# Results written to VRT: f(a, b, acc, W); to the accumulator: g(a, b, acc, W).
_TO_REG = {
    "addm": lambda a, b, c, W: a + b, "addfs": lambda a, b, c, W: _sat(a + b, W),
    "subm": lambda a, b, c, W: a - b, "subfs": lambda a, b, c, W: _sat(a - b, W),
    "mulm": lambda a, b, c, W: a * b, "mulfs": lambda a, b, c, W: _sat(2 * a * b, 2 * W) >> W,
    "mam": lambda a, b, c, W: a * b + c, "mafs": lambda a, b, c, W: _sat(2 * a * b + c, 2 * W) >> W,
    "addacm": lambda a, b, c, W: c + a,
    "addacfs": lambda a, b, c, W: _sat(c + (a << W), 2 * W) >> W,
}
_TO_ACC = {
    "mtac": lambda a, b, c, W: a, "mtacf": lambda a, b, c, W: a << W,
    "matacm": lambda a, b, c, W: a * b + c, "matacfs": lambda a, b, c, W: _sat(2 * a * b + c, 2 * W),
    "multacm": lambda a, b, c, W: a * b, "multacfs": lambda a, b, c, W: _sat(2 * a * b, 2 * W),
    "addactacm": lambda a, b, c, W: c + a,
    "addactacf": lambda a, b, c, W: _sat(c + (a << W), 2 * W),
    "addtac": lambda a, b, c, W: a + b,
}
_VKINDS: dict[str, tuple[str, int]] = {}
for _stem, _kind in (("ma{}m", "mam"), ("mtac{}", "mtac"), ("ma{}fs", "mafs"), ("mtac{}f", "mtacf"),
                     ("matac{}m", "matacm"), ("matac{}fs", "matacfs"), ("mul{}m", "mulm"),
                     ("mul{}fs", "mulfs"), ("multac{}m", "multacm"), ("multac{}fs", "multacfs"),
                     ("splat{}", "splat"), ("cmp{}", "cmp"), ("sh{}", "sh"), ("sub{}m", "subm"),
                     ("sub{}fs", "subfs"), ("addactac{}m", "addactacm"), ("addactac{}f", "addactacf"),
                     ("addac{}m", "addacm"), ("addac{}fs", "addacfs"), ("addtac{}", "addtac"),
                     ("add{}m", "addm"), ("add{}fs", "addfs")):
    for _x, _w in (("h", 2), ("b", 1)):
        _VKINDS["fxv" + _stem.format(_x)] = (_kind, _w)
for _mn in ("inx", "outx", "pckbu", "pckbl", "upckbr", "upckbl", "sel", "lax", "stax"):
    _VKINDS["fxv" + _mn] = (_mn, 1)


def _split(b: bytes, w: int) -> list[int]:
    return [int.from_bytes(b[i:i + w], "big", signed=True) for i in range(0, len(b), w)]


def _join(values, w: int) -> bytes:
    return b"".join((v % (1 << 8 * w)).to_bytes(w, "big") for v in values)


def _vstep(m: _Machine, name: str, f: list[int]):
    kind, w = _VKINDS[name]
    rt, ra, rb, c = f[:4]
    nb, W = m.nb, 8 * w
    on = [c == 0 or bool(m.flags[i * w] & (1 << (c - 1))) for i in range(nb // w)]
    if kind in ("lax", "stax", "inx", "outx"):
        ea = ((m.r[ra] if ra else 0) + m.r[rb]) & M
        if kind in ("lax", "stax"):
            if ea % 16:
                raise _Fault(I.Status.ALIGNMENT, ea)
            if ea + nb > len(m.mem):
                raise _Fault(I.Status.BUS_ERROR, ea)
            if kind == "lax":
                m.vr[rt] = bytearray(m.mem[ea:ea + nb].tobytes())
            else:
                m.mem[ea:ea + nb] = np.frombuffer(bytes(m.vr[rt]), np.uint8)
            return
        io = m.io
        space, index = divmod(ea, io.space)
        halves = io.causal.shape[1] // nb
        row, half = divmod(index, halves)
        if space > 3 or row >= io.causal.shape[0]:
            raise _Fault(I.Status.BUS_ERROR, ea)
        for j in range(nb):
            if not on[j]:
                continue
            col = half * nb + j
            if kind == "inx":
                if space < 2:
                    word = int((io.weights if space == 0 else io.labels)[row, col // 4])
                    m.vr[rt][j] = (word >> (8 * (col % 4))) & 0xFF
                else:
                    m.vr[rt][j] = int((io.causal if space == 2 else io.acausal)[row, col])
            elif space < 2:
                arr = io.weights if space == 0 else io.labels
                sh = 8 * (col % 4)
                arr[row, col // 4] = (int(arr[row, col // 4]) & ~(0xFF << sh)) | (m.vr[rt][j] << sh)
                io.touched[space, row] = 1
            elif m.vr[rt][j]:
                io.resets[row, col] |= 1 if space == 2 else 2
        if kind == "inx" and space >= 2:
            m.extra_cycles = m.corr_cycles
        return
    va, vb = bytes(m.vr[ra]), bytes(m.vr[rb])
    if kind in ("pckbu", "pckbl", "upckbl", "upckbr"):
        sz = 8 - c
        mk = (1 << sz) - 1
        out = bytearray()
        for s in range(0, nb, 16):
            ha = [int.from_bytes(va[s + 2 * i:s + 2 * i + 2], "big") for i in range(8)]
            hb = [int.from_bytes(vb[s + 2 * i:s + 2 * i + 2], "big") for i in range(8)]
            if kind == "pckbu":
                out += bytes([(h >> (16 - sz)) & mk for h in ha + hb])
            elif kind == "pckbl":
                out += bytes([(h >> (16 - 2 * sz)) & mk for h in ha + hb])
            else:
                lo = 0 if kind == "upckbl" else 8
                out += b"".join((((va[s + lo + i] & mk) << (16 - sz))
                                 | ((vb[s + lo + i] & mk) << (16 - 2 * sz))).to_bytes(2, "big")
                                for i in range(8))
        m.vr[rt] = out
        return
    if kind == "cmp":
        for i, a in enumerate(_split(va, w)):
            flag = 1 if a > 0 else 2 if a < 0 else 4
            m.flags[i * w:(i + 1) * w] = bytes([flag] * w)
        return
    if kind == "sel":
        m.vr[rt] = bytearray(vb[j] if on[j] else va[j] for j in range(nb))
        return
    A, B = _split(va, w), _split(vb, w)
    acc = _split(bytes(m.acc), 2 * w)
    t = _split(bytes(m.vr[rt]), w)
    if kind == "splat":
        new = [m.r[ra] for _ in A]
    elif kind == "sh":
        s = rb - 32 if rb >= 16 else rb
        new = [(a % (1 << W)) << s if s >= 0 else (a % (1 << W)) >> -s for a in A]
    elif kind in _TO_REG:
        new = [_TO_REG[kind](a, b, cc, W) for a, b, cc in zip(A, B, acc)]
    else:
        new_acc = [_TO_ACC[kind](a, b, cc, W) if e else cc for a, b, cc, e in zip(A, B, acc, on)]
        m.acc = bytearray(_join(new_acc, 2 * w))
        return
    m.vr[rt] = bytearray(_join([v if e else old for v, old, e in zip(new, t, on)], w))


def run(mem: np.ndarray, state: np.ndarray, max_cycles: int = 1 << 40,
        decoded: np.ndarray | None = None, vec: np.ndarray | None = None, io=None,
        sleep_advances: bool = False, corr_cycles: int = 0) -> int:
    """Same contract as `interp.run` (`decoded` is ignored: every fetch decodes)."""
    if vec is None:
        vec = I.new_vector_state(1)
    if io is None:
        io = I.VectorIO.empty(slices=len(vec) // 35 // 16)
    m = _Machine(mem, state, vec, io)
    m.corr_cycles = corr_cycles
    fault = int(state[I.S_FAULT])
    cache: dict[int, np.ndarray] = {}
    try:
        if m.x["S_SLEEP"] and not m.sleep(max_cycles, sleep_advances):
            raise _Stop(I.Status.SLEEPING, fault)
        while True:
            req = m.async_request() if m.msr & MSR_EE else None
            if req:
                m.take(req, m.pc, m.pc)
                continue
            if m.cycles >= max_cycles:
                raise _Stop(I.Status.MAX_CYCLES, m.pc)
            pc = m.pc
            try:
                if pc % 4:
                    raise _Fault(I.Status.ALIGNMENT, pc)
                if pc + 4 > len(mem) - len(mem) % 4:
                    raise _Fault(I.Status.BUS_ERROR, pc)
                word = m.load(pc, 4)
                row = cache.get(word)
                if row is None:
                    row = cache[word] = predecode_words([word])[0]
                m.extra_cycles = 0
                npc = _step(m, row)
            except _Fault as exc:
                m.take(exc.status, pc, exc.addr, exc.esr)
                continue
            except _Wait:
                m.retire(int(row[2]))
                m.pc = (pc + 4) & M
                fault = pc
                m.x["S_SLEEP"], m.x["S_WAIT_CYCLES"] = 1, m.cycles
                if m.sleep(max_cycles, sleep_advances):
                    continue
                raise _Stop(I.Status.SLEEPING, fault) from None
            except _TimerWrite as w:
                m.timer_write(w.n, w.v, int(row[2]))
                m.insns += 1
                m.pc = (pc + 4) & M
                continue
            except _Bus:
                m.retire(int(row[2]))
                m.pc = (pc + 4) & M
                raise _Stop(I.Status.BUS, fault) from None
            m.retire(int(row[2]) + m.extra_cycles)
            m.pc = npc
    except _Stop as stop:
        status, fault = stop.status, stop.fault
    m.save(fault)
    return status
