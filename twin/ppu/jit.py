"""Region translation: hot PPU code compiled to machine code through LLVM.

The interpreter (`twin.ppu.interp._run`) counts taken branches per target word.
When a target reaches the hot threshold it stops with the internal status
ST_HOT and its driver (`interp.run`, or the co-simulation's Python side) calls
`translate_at`.  That collects a *region*: every basic block reachable from the
target through direct branches, fall-through, calls (`bl`: the callee and the
return site) and conditional returns, up to `MAX_REGION_INSNS` instructions,
and compiles it with llvmlite into one machine-code function (for the vector
register size of its chip: the fxv arithmetic, compare and select are
translated as element loops over the vector state).  The function keeps the
GPRs, CR, XER, LR, CTR and SPRG0-3 in the state array, checks the cycle
budget once per block and leaves with exactly the interpreter's state at an
instruction boundary.  Indirect branches (`blr`, `bctr`) continue inside the
region when their target is one of its blocks.  Every block start is an entry:
the interpreter jumps into the translation whenever it fetches a word marked
in `COL_JIT`.

Why LLVM directly and not numba: numba's typing, SSA and lowering passes grow
faster than linearly with the size of a generated function (a 250-block
function took 155 s to compile); llvmlite compiles the same code in a fraction
of a second, so translation pays off on code that runs a few thousand times.

A region leaves (returns to the interpreter, which then executes the next
instruction itself) with S_PC at:

* a block whose cycle cost would pass the limit (the cycle budget, the
  next timer request, or the interpreter's yield bound): the interpreter runs
  the rest of the budget instruction by instruction, so stops, timer
  interrupts and cycle counts are exact;
* an instruction outside the translated subset (vector I/O, pack/unpack and
  vector loads/stores, `wait`, traps, MSR and interrupt returns, SPRs other
  than XER/LR/CTR/SPRG0-3/TB, illegal or stale words); the word after such an
  instruction starts a block of its own, so the interpreter executes the one
  instruction and enters the translation again;
* a load or store that is misaligned, outside memory, on the register bus, or
  (stores) into translated code: the interpreter then faults, goes to the bus,
  or marks the translations dirty;
* a branch target outside the region.

Entry conditions (checked by the interpreter): no timer interrupt requested
with MSR[EE] set; with EE set, the limit the caller passes ends the region
before the next timer request (so the region never has to raise it).  A
region does not touch the timer unit (DEC, TSR, DECAR): the interpreter
advances it over the region's cycles afterwards (interp._charge).

Decoded-row columns (`interp.DECODED_WIDTH` = 13): COL_HOT counts taken
branches to the word, COL_JIT is 1 at region entries (-1: not translatable),
COL_ADDR_LO/HI hold the machine-code address, COL_COVERED is 1 for every word
a region translated; bit `DIRTY` of row 0's COL_COVERED is set by a store into
covered code, after which the driver drops every translation of that memory
(`interp.redecode`) before the interpreter enters one again.  Compiled regions are cached
for the process by their code and entry (at most `MAX_REGIONS`; beyond that
code runs interpreted).
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import sys
import time

import numpy as np

from isa.cache import cache_folder

assert sys.byteorder == "little", "twin.ppu.jit addresses the low halves of int64 state slots"

from . import interp as I
from ._decode import (FLAG_AA, FLAG_INDEXED, FLAG_LK, FLAG_OE, FLAG_RC, FLAG_SIGN, FLAG_UPDATE,
                      GROUP_SHIFT, OPS)

__all__ = ["translate_at", "MAX_REGION_INSNS", "MAX_REGIONS", "stats", "report"]

# LLVM -O1 for both the IR passes and code generation: on compiled C (mix.c)
# it runs as fast as -O2 (about 2 G PPU cycles/s) and compiles about 10 %
# faster; -O0 compiles 3x faster but runs 3x slower.
OPT_LEVEL = 1
MAX_REGION_INSNS = 2048
MAX_BLOCK_INSNS = 256
MAX_REGIONS = 4096

# Groups translated (by name); everything else ends a block.
_GROUPS = frozenset({"load", "store", "add_imm", "branch_cond", "compare", "rotate", "logic", "branch",
                     "arith", "logic_imm", "shift", "extend", "mul_div", "carry_imm", "spr_move",
                     "cr_move", "load_multiple", "store_multiple", "bit_count", "cr_logic", "cr_field",
                     "sync"})
_GROUP_NAME = {v: k for k, v in I.GROUP.items()}
# Vector kinds translated: the element-wise arithmetic (I._VALU_TAB, splat,
# shift), compare and select; I/O, pack/unpack and vector loads/stores are not.
_VKINDS = frozenset(range(I.K_INX)) | {I.K_SEL}
# SPRs a region moves (number -> state slot: XER, LR, CTR, SPRG0-3, from the
# interpreter's table); TB reads come from the cycle counter plus
# S_TB_OFFSET (the time base is writable).  Others (DEC, TSR, TCR, DECAR,
# SRR0/1, ...) leave the region: they interact with interrupts.
_SPR_REG = {n: slot for n, slot in I.SPR_INDEX.items()
            if slot in (I.S_XER, I.S_LR, I.S_CTR) or I.S_SPRG0 <= slot < I.S_SPRG0 + 4}
_TB = I.TB_SHIFT
_SLOTS = list(range(32)) + [I.S_CR, I.S_XER, I.S_LR, I.S_CTR] + [I.S_SPRG0 + k for k in range(4)]

_CACHE: dict[tuple, tuple] = {}
# regions compiled (instructions, seconds), loaded from the disk cache (seconds),
# found in the process cache, refused (MAX_REGIONS reached)
stats = {"regions": 0, "instructions": 0, "compile_s": 0.0, "disk": 0, "load_s": 0.0, "cached": 0,
         "refused": 0}


def _translatable(row) -> bool:
    op, fl = int(row[0]), int(row[1])
    if op < 0:
        return False
    g = _GROUP_NAME.get(fl >> GROUP_SHIFT)
    if g not in _GROUPS and g != "vector":
        return False
    name = OPS[op]
    if g == "vector":
        return (int(row[7]) & 0xFF) in _VKINDS
    if g == "spr_move":
        n = I.spr_number(int(row[4]) if name == "mfspr" else int(row[3]))
        return n in _SPR_REG or (name == "mfspr" and n in _TB)
    return True


def _is_branch(row) -> bool:
    g = _GROUP_NAME.get(int(row[1]) >> GROUP_SHIFT)
    return g in ("branch", "branch_cond")


# ---- region discovery --------------------------------------------------------
def _successors(pc: int, row) -> list[int]:
    """Static successors of a block ending with the branch `row` at `pc`."""
    op, fl = int(row[0]), int(row[1])
    name = OPS[op]
    f = [int(x) for x in row[3:8]]
    out = []
    npc = (pc + 4) & I.M32
    if name == "b":
        out.append((f[0] * 4) & I.M32 if fl & FLAG_AA else (pc + f[0] * 4) & I.M32)
        if fl & FLAG_LK:
            out.append(npc)
    else:
        bo = f[0]
        always = bool(bo & 4) and bool(bo & 16)
        if name == "bc":
            out.append((f[2] * 4) & I.M32 if fl & FLAG_AA else (pc + f[2] * 4) & I.M32)
        if not always or fl & FLAG_LK:
            out.append(npc)
    return out


def _discover(dec: np.ndarray, entry: int):
    """Blocks of the region at `entry`: {pc: [(pc, row), ...]} in discovery order."""
    nwords = dec.shape[0]
    blocks: dict[int, list] = {}
    todo = [entry]
    seen = set()
    total = 0
    while todo and total < MAX_REGION_INSNS:
        start = todo.pop(0)
        if start in seen or start & 3 or (start >> 2) >= nwords:
            continue
        seen.add(start)
        if start != entry and dec[start >> 2, I.COL_JIT] > 0:
            continue     # another region's entry: leave there (the interpreter goes on into it)
        insns = []
        pc = start
        while len(insns) < MAX_BLOCK_INSNS and total + len(insns) < MAX_REGION_INSNS:
            w = pc >> 2
            if w >= nwords:
                break
            if not _translatable(dec[w]):
                if dec[w, 0] >= 0 and not _is_branch(dec[w]):
                    # The interpreter executes this one (vector I/O, mtmsr, ...);
                    # the code after it is an entry of its own.
                    todo.append(pc + 4)
                break
            insns.append((pc, dec[w]))
            if _is_branch(dec[w]):
                todo.extend(_successors(pc, dec[w]))
                break
            pc += 4
        if not insns:
            continue
        blocks[start] = insns
        total += len(insns)
        last_pc, last = insns[-1]
        if not _is_branch(last) and (last_pc + 4) >> 2 < nwords and _translatable(dec[(last_pc + 4) >> 2]):
            todo.append(last_pc + 4)     # the block stopped at its length limit: go on
    return blocks


# ---- code generation -------------------------------------------------------------
class _Gen:
    """LLVM IR for one region (llvmlite.ir)."""

    def __init__(self, blocks: dict, name: str, nb: int):
        from llvmlite import ir
        self.ir = ir
        self.i1, self.i8, self.i16 = ir.IntType(1), ir.IntType(8), ir.IntType(16)
        self.i32, self.i64 = ir.IntType(32), ir.IntType(64)
        i8p = self.i8.as_pointer()
        self.module = ir.Module(name=name)
        fnty = ir.FunctionType(self.i64, [i8p, i8p, i8p, self.i64, self.i64, self.i64, i8p])
        self.fn = ir.Function(self.module, fnty, name=name)
        for k in (0, 1, 2, 6):
            self.fn.args[k].add_attribute("noalias")
        self.nb = nb                     # vector register bytes (16 per slice)
        self.blocks = blocks
        self.lo = min(blocks)
        self.hi = max(pc for insns in blocks.values() for pc, _ in insns) + 4

    # small helpers --------------------------------------------------------------
    def c32(self, v):
        return self.ir.Constant(self.i32, v & 0xFFFFFFFF)

    def c64(self, v):
        return self.ir.Constant(self.i64, v)

    def reg(self, slot):
        return self.b.load(self.regs[slot])

    def set(self, slot, v):
        self.b.store(v, self.regs[slot])
        # Registers live in the state array (the low 32 bits of each int64
        # slot; the high half is always 0): every exit then needs no
        # write-back, and LLVM, told the arrays do not alias, forwards the
        # loads.  Keeping them in allocas made each of a region's many side
        # exits a phi node per register, and compile time grew with their product.

    def ra0(self, k):
        return self.c32(0) if k == 0 else self.reg(k)

    def intrinsic(self, name, ty, args=None):
        fnty = self.ir.FunctionType(ty, args) if args else None
        return self.module.declare_intrinsic(name, [ty], fnty)

    def bswap(self, v, ty):
        return self.b.call(self.intrinsic("llvm.bswap", ty), [v])

    def stateptr(self, slot):
        return self.b.gep(self.st, [self.c64(slot)])

    def exit_at(self, pc_value):
        """Leave the region with S_PC = pc_value (an i32), everything before retired."""
        self.b.store(pc_value, self.pc_out)
        self.b.branch(self.exit_block)

    def side_exit(self, cond, pc):
        """Leave before the instruction at pc when cond (i1) holds."""
        bad = self.fn.append_basic_block()
        ok = self.fn.append_basic_block()
        self.b.cbranch(cond, bad, ok)
        self.b.position_at_end(bad)
        self.exit_at(self.c32(pc))
        self.b.position_at_end(ok)

    def goto(self, target: int):
        """Continue at the constant address target: a block of the region, or leave."""
        if target in self.labels:
            self.b.branch(self.labels[target])
        else:
            self.exit_at(self.c32(target))

    def cr0_from(self, v):
        """CR0 = LT/GT/EQ of v (signed) | XER[SO]."""
        b = self.b
        zero = self.c32(0)
        c = b.select(b.icmp_signed("<", v, zero), self.c32(8),
                     b.select(b.icmp_signed(">", v, zero), self.c32(4), self.c32(2)))
        so = b.lshr(self.reg(I.S_XER), self.c32(31))
        c = b.or_(c, so)
        cr = b.and_(self.reg(I.S_CR), self.c32(0x0FFFFFFF))
        self.set(I.S_CR, b.or_(cr, b.shl(c, self.c32(28))))

    def set_crf(self, bf, c):
        sh = 28 - 4 * bf
        cr = self.b.and_(self.reg(I.S_CR), self.c32(~(0xF << sh)))
        self.set(I.S_CR, self.b.or_(cr, self.b.shl(c, self.c32(sh))))

    def set_xer_bit(self, bit, flag):
        """XER bit := flag (i1)."""
        b = self.b
        x = b.and_(self.reg(I.S_XER), self.c32(~bit))
        self.set(I.S_XER, b.or_(x, b.select(flag, self.c32(bit), self.c32(0))))

    def set_ov(self, flag):
        """OV := flag; SO |= flag (the interpreter's _set_ov)."""
        b = self.b
        x = b.and_(self.reg(I.S_XER), self.c32(~I.XER_OV))
        self.set(I.S_XER, b.or_(x, b.select(flag, self.c32(I.XER_OV | I.XER_SO), self.c32(0))))

    def xer_ca(self):
        return self.b.and_(self.b.lshr(self.reg(I.S_XER), self.c32(29)), self.c32(1))

    def retire(self, cost):
        b = self.b
        b.store(b.add(b.load(self.cycles), self.c64(cost)), self.cycles)
        b.store(b.add(b.load(self.insns), self.c64(1)), self.insns)

    # memory ---------------------------------------------------------------------
    def mem_checks(self, ea, size, pc, store):
        """Side exits for an access the interpreter must perform itself."""
        b = self.b
        bad = b.icmp_unsigned("!=", b.and_(ea, self.c32(0x80000000 | (size - 1))), self.c32(0))
        self.side_exit(bad, pc)
        ea64 = b.zext(ea, self.i64)
        self.side_exit(b.icmp_unsigned(">", b.add(ea64, self.c64(size)), self.nmem), pc)
        return ea64

    def covered_exit(self, ea64, nbytes, pc):
        """Stores: leave before one that hits translated code; mark the words stale."""
        b = self.b
        for off in range(0, nbytes, 4):
            k = b.lshr(b.add(ea64, self.c64(off)), self.c64(2))
            inside = self.fn.append_basic_block()
            after = self.fn.append_basic_block()
            b.cbranch(b.icmp_unsigned("<", k, self.nrows), inside, after)
            b.position_at_end(inside)
            row = b.mul(k, self.c64(I.DECODED_WIDTH))
            cov = b.load(b.gep(self.dec, [b.add(row, self.c64(I.COL_COVERED))]))
            self.side_exit(b.icmp_unsigned("!=", b.and_(cov, self.ir.Constant(self.i32, 1)),
                                           self.ir.Constant(self.i32, 0)), pc)
            b.store(self.ir.Constant(self.i32, I.OP_STALE), b.gep(self.dec, [row]))
            b.branch(after)
            b.position_at_end(after)

    def load(self, ea64, size, sign):
        b = self.b
        ty = {1: self.i8, 2: self.i16, 4: self.i32}[size]
        p = b.bitcast(b.gep(self.mem, [ea64]), ty.as_pointer())
        v = b.load(p, align=1)
        if size > 1:
            v = self.bswap(v, ty)
        if size == 4:
            return v
        return b.sext(v, self.i32) if sign else b.zext(v, self.i32)

    def store(self, ea64, size, v):
        b = self.b
        ty = {1: self.i8, 2: self.i16, 4: self.i32}[size]
        if size < 4:
            v = b.trunc(v, ty)
        if size > 1:
            v = self.bswap(v, ty)
        b.store(v, b.bitcast(b.gep(self.mem, [ea64]), ty.as_pointer()), align=1)

    # the function -------------------------------------------------------------------
    def build(self):
        ir = self.ir
        fn = self.fn
        st_arg, mem_arg, dec_arg, self.nmem, self.nrows, limit, self.vec = fn.args
        entry = fn.append_basic_block("entry")
        self.b = b = ir.IRBuilder(entry)
        self.st = b.bitcast(st_arg, self.i64.as_pointer())
        self.mem = mem_arg
        self.dec = b.bitcast(dec_arg, self.i32.as_pointer())
        st32 = b.bitcast(st_arg, self.i32.as_pointer())
        self.regs = {s: b.gep(st32, [self.c64(2 * s)]) for s in _SLOTS}     # little-endian low halves
        self.cycles = b.alloca(self.i64)
        self.insns = b.alloca(self.i64)
        self.pc_out = b.alloca(self.i32)
        self.next_pc = b.alloca(self.i32)
        c0 = b.load(self.stateptr(I.S_CYCLES))
        i0 = b.load(self.stateptr(I.S_INSNS))
        b.store(c0, self.cycles)
        b.store(i0, self.insns)
        self.limit = limit
        self.exit_block = fn.append_basic_block("exit")
        self.dispatch = dispatch = fn.append_basic_block("dispatch")
        self.labels = {pc: fn.append_basic_block(f"b{pc:x}") for pc in self.blocks}
        start_pc = b.trunc(b.load(self.stateptr(I.S_PC)), self.i32)
        b.store(start_pc, self.next_pc)
        b.branch(dispatch)
        # dispatch: indirect branches and the entry
        b.position_at_end(dispatch)
        npc = b.load(self.next_pc)
        miss = fn.append_basic_block("miss")
        sw = b.switch(npc, miss)
        for pc, lab in self.labels.items():
            sw.add_case(self.c32(pc), lab)
        b.position_at_end(miss)
        self.exit_at(npc)
        for pc, insns in self.blocks.items():
            b.position_at_end(self.labels[pc])
            self.block(pc, insns)
        # exit: registers back to the state array
        b.position_at_end(self.exit_block)
        b.store(b.zext(b.load(self.pc_out), self.i64), self.stateptr(I.S_PC))
        c1 = b.load(self.cycles)
        b.store(c1, self.stateptr(I.S_CYCLES))
        i1 = b.load(self.insns)
        b.store(i1, self.stateptr(I.S_INSNS))
        # The timer unit (DEC, TSR, the time base) catches up in the interpreter
        # over the region's cycles (interp._charge), which ends the region before
        # a timer interrupt is due.
        # Chain: when this call made progress and S_PC is another region's entry,
        # go on there (a tail call: no stack growth, no return to the interpreter).
        # Regions never store into translated code, so no DIRTY check is needed.
        pc64 = b.zext(b.load(self.pc_out), self.i64)
        w = b.lshr(pc64, self.c64(2))
        progress = b.icmp_signed(">", i1, i0)
        chain = fn.append_basic_block("chain")
        done = fn.append_basic_block("done")
        look = fn.append_basic_block("look")
        b.cbranch(b.and_(progress, b.icmp_unsigned("<", w, self.nrows)), look, done)
        b.position_at_end(look)
        row = b.mul(w, self.c64(I.DECODED_WIDTH))
        col = lambda c: b.load(b.gep(self.dec, [b.add(row, self.c64(c))]))
        b.cbranch(b.icmp_signed(">", col(I.COL_JIT), self.ir.Constant(self.i32, 0)), chain, done)
        b.position_at_end(chain)
        addr = b.or_(b.shl(b.zext(col(I.COL_ADDR_HI), self.i64), self.c64(32)),
                     b.zext(col(I.COL_ADDR_LO), self.i64))
        target = b.inttoptr(addr, fn.type)
        b.ret(b.call(target, list(fn.args), tail="musttail"))
        b.position_at_end(done)
        b.ret(self.c64(0))

    def block(self, start, insns):
        b = self.b
        cost = sum(int(row[2]) for _, row in insns)
        over = b.icmp_signed(">", b.add(b.load(self.cycles), self.c64(cost)), self.limit)
        self.side_exit(over, start)
        for pc, row in insns:
            self.insn(pc, row)        # a branch terminates the basic block itself
        last_pc, last = insns[-1]
        if not _is_branch(last):
            self.goto(last_pc + 4)    # next word: untranslatable (leave) or a block

    def insn(self, pc, row):
        b = self.b
        op, fl, cost = int(row[0]), int(row[1]), int(row[2])
        f0, f1, f2, f3, f4 = (int(x) for x in row[3:8])
        name = OPS[op]
        g = _GROUP_NAME[fl >> GROUP_SHIFT]
        rc = fl & FLAG_RC
        npc = (pc + 4) & I.M32
        crv = None
        c32 = self.c32
        if g in ("load", "store"):
            if fl & FLAG_INDEXED:
                ra = f1
                ea = b.add(self.ra0(f1), self.reg(f2))
            else:
                ra = f2
                ea = b.add(self.ra0(f2), c32(f1))
            size = (fl >> I.SIZE_SHIFT) & 7
            ea64 = self.mem_checks(ea, size, pc, g == "store")
            if g == "store":
                self.covered_exit(ea64, 4, pc)
                self.store(ea64, size, self.reg(f0))
            else:
                self.set(f0, self.load(ea64, size, fl & FLAG_SIGN))
            if fl & FLAG_UPDATE:
                self.set(ra, ea)
        elif g in ("load_multiple", "store_multiple"):
            ea = b.add(self.ra0(f2), c32(f1))
            size = 4 * (32 - f0)
            bad = b.icmp_unsigned("!=", b.and_(ea, c32(0x80000003)), c32(0))
            self.side_exit(bad, pc)
            ea64 = b.zext(ea, self.i64)
            self.side_exit(b.icmp_unsigned(">", b.add(ea64, self.c64(size)), self.nmem), pc)
            if g == "store_multiple":
                self.covered_exit(ea64, size, pc)
                for r in range(f0, 32):
                    self.store(b.add(ea64, self.c64(4 * (r - f0))), 4, self.reg(r))
            else:
                for r in range(f0, 32):
                    self.set(r, self.load(b.add(ea64, self.c64(4 * (r - f0))), 4, False))
        elif g == "add_imm":
            imm = f2 if name == "addi" else f2 << 16
            self.set(f0, b.add(self.ra0(f1), c32(imm)))
        elif g == "logic_imm":
            s = self.reg(f1)
            imm = f2 << 16 if name in ("oris", "xoris", "andis.") else f2
            fn = {"ori": b.or_, "oris": b.or_, "xori": b.xor, "xoris": b.xor,
                  "andi.": b.and_, "andis.": b.and_}[name]
            r = fn(s, c32(imm))
            self.set(f0, r)
            if name in ("andi.", "andis."):
                crv = r
        elif g == "logic":
            s, t = self.reg(f1), self.reg(f2)
            ones = c32(0xFFFFFFFF)
            r = {"or": lambda: b.or_(s, t), "and": lambda: b.and_(s, t), "xor": lambda: b.xor(s, t),
                 "andc": lambda: b.and_(s, b.xor(t, ones)), "nor": lambda: b.xor(b.or_(s, t), ones),
                 "eqv": lambda: b.xor(b.xor(s, t), ones), "orc": lambda: b.or_(s, b.xor(t, ones)),
                 "nand": lambda: b.xor(b.and_(s, t), ones)}[name]()
            self.set(f0, r)
            if rc:
                crv = r
        elif g == "rotate":
            n = b.and_(self.reg(f2), c32(31)) if name == "rlwnm" else c32(f2)
            m = I._mask.py_func(f3, f4)
            s = self.reg(f1)
            fshl = self.intrinsic("llvm.fshl", self.i32, [self.i32] * 3)
            r = b.call(fshl, [s, s, n])
            if name == "rlwimi":
                r = b.or_(b.and_(r, c32(m)), b.and_(self.reg(f0), c32(~m)))
            else:
                r = b.and_(r, c32(m))
            self.set(f0, r)
            if rc:
                crv = r
        elif g == "compare":
            a = self.reg(f2)
            bv = c32(f3) if name in ("cmpi", "cmpli") else self.reg(f3)
            signed = name in ("cmpi", "cmp")
            lt = b.icmp_signed("<", a, bv) if signed else b.icmp_unsigned("<", a, bv)
            gt = b.icmp_signed(">", a, bv) if signed else b.icmp_unsigned(">", a, bv)
            c = b.select(lt, c32(8), b.select(gt, c32(4), c32(2)))
            c = b.or_(c, b.lshr(self.reg(I.S_XER), c32(31)))
            self.set_crf(f0, c)
        elif g == "arith":
            a = self.reg(f1)
            x = a
            y = self.reg(f2)
            carry = c32(0)
            ca_form = name not in ("add", "subf", "neg")
            inv = lambda v: b.xor(v, c32(0xFFFFFFFF))
            if name == "subf":
                x, carry = inv(a), c32(1)
            elif name == "neg":
                x, y, carry = inv(a), c32(0), c32(1)
            elif name == "subfc":
                x, carry = inv(a), c32(1)
            elif name in ("adde", "subfe"):
                if name == "subfe":
                    x = inv(a)
                carry = self.xer_ca()
            elif name in ("addze", "subfze"):
                if name == "subfze":
                    x = inv(a)
                y, carry = c32(0), self.xer_ca()
            elif name in ("addme", "subfme"):
                if name == "subfme":
                    x = inv(a)
                y, carry = c32(0xFFFFFFFF), self.xer_ca()
            s = b.add(b.add(b.zext(x, self.i64), b.zext(y, self.i64)), b.zext(carry, self.i64))
            r = b.trunc(s, self.i32)
            if ca_form:
                self.set_xer_bit(I.XER_CA, b.trunc(b.lshr(s, self.c64(32)), self.i1))
            self.set(f0, r)
            if fl & FLAG_OE:
                ov = b.lshr(b.and_(b.xor(x, r), b.xor(y, r)), c32(31))
                self.set_ov(b.trunc(ov, self.i1))
            if rc:
                crv = r
        elif g == "shift":
            s = self.reg(f1)
            if name in ("slw", "srw"):
                n = b.and_(self.reg(f2), c32(63))
                big = b.icmp_unsigned(">", n, c32(31))
                sh = b.and_(n, c32(31))
                v = b.shl(s, sh) if name == "slw" else b.lshr(s, sh)
                r = b.select(big, c32(0), v)
            else:
                n = b.and_(self.reg(f2), c32(63)) if name == "sraw" else c32(f2)
                neg = b.icmp_signed("<", s, c32(0))
                big = b.icmp_unsigned(">", n, c32(31))
                sh = b.select(big, c32(31), n)
                r = b.ashr(s, sh)
                lost = b.and_(s, b.sub(b.shl(c32(1), sh), c32(1)))
                ca = b.and_(neg, b.or_(big, b.icmp_unsigned("!=", lost, c32(0))))
                self.set_xer_bit(I.XER_CA, ca)
            self.set(f0, r)
            if rc:
                crv = r
        elif g == "extend":
            ty = self.i16 if name == "extsh" else self.i8
            r = b.sext(b.trunc(self.reg(f1), ty), self.i32)
            self.set(f0, r)
            if rc:
                crv = r
        elif g == "mul_div":
            a = self.reg(f1)
            if name == "mulli":
                self.set(f0, b.mul(a, c32(f2)))
            else:
                bv = self.reg(f2)
                ov = self.ir.Constant(self.i1, 0)
                if name == "mullw":
                    p = b.mul(b.sext(a, self.i64), b.sext(bv, self.i64))
                    r = b.trunc(p, self.i32)
                    ov = b.icmp_signed("!=", b.sext(r, self.i64), p)
                elif name == "mulhwu":
                    p = b.mul(b.zext(a, self.i64), b.zext(bv, self.i64))
                    r = b.trunc(b.lshr(p, self.c64(32)), self.i32)
                elif name == "mulhw":
                    p = b.mul(b.sext(a, self.i64), b.sext(bv, self.i64))
                    r = b.trunc(b.ashr(p, self.c64(32)), self.i32)
                else:   # divwu / divw: the interpreter leaves RA in RT on a bad divide
                    if name == "divwu":
                        ov = b.icmp_unsigned("==", bv, c32(0))
                    else:
                        ov = b.or_(b.icmp_unsigned("==", bv, c32(0)),
                                   b.and_(b.icmp_unsigned("==", a, c32(0x80000000)),
                                          b.icmp_unsigned("==", bv, c32(0xFFFFFFFF))))
                    safe_b = b.select(ov, c32(1), bv)
                    q = b.udiv(a, safe_b) if name == "divwu" else b.sdiv(a, safe_b)
                    r = b.select(ov, a, q)
                self.set(f0, r)
                if fl & FLAG_OE:
                    self.set_ov(ov)
                if rc:
                    crv = r
        elif g == "carry_imm":
            imm = self.c64(f2 & I.M32)
            if name == "subfic":
                s = b.add(b.add(b.zext(b.xor(self.reg(f1), c32(0xFFFFFFFF)), self.i64), imm), self.c64(1))
            else:
                s = b.add(b.zext(self.reg(f1), self.i64), imm)
            r = b.trunc(s, self.i32)
            self.set(f0, r)
            self.set_xer_bit(I.XER_CA, b.trunc(b.lshr(s, self.c64(32)), self.i1))
            if name == "addic.":
                crv = r
        elif g == "spr_move":
            if name == "mfspr":
                n = I.spr_number(f1)
                if n in _TB:
                    tb = b.add(b.load(self.cycles), b.load(self.stateptr(I.S_TB_OFFSET)))
                    v = b.lshr(tb, self.c64(_TB[n]))
                    self.set(f0, b.trunc(v, self.i32))
                else:
                    self.set(f0, self.reg(_SPR_REG[n]))
            else:
                n = I.spr_number(f0)
                v = self.reg(f1)
                if n == 1:
                    v = b.and_(v, c32(I.XER_MASK))
                self.set(_SPR_REG[n], v)
        elif g == "cr_move":
            if name == "mfcr":
                self.set(f0, self.reg(I.S_CR))
            elif name == "mfocrf":
                m = sum(0xF << (28 - 4 * k) for k in range(8) if f1 & (0x80 >> k))
                self.set(f0, b.and_(self.reg(I.S_CR), c32(m)))
            else:
                m = sum(0xF << (28 - 4 * k) for k in range(8) if f0 & (0x80 >> k))
                cr = b.and_(self.reg(I.S_CR), c32(~m))
                self.set(I.S_CR, b.or_(cr, b.and_(self.reg(f1), c32(m))))
        elif g == "bit_count":
            s = self.reg(f1)
            if name == "cntlzw":
                r = b.call(self.intrinsic("llvm.ctlz", self.i32, [self.i32, self.i1]), [s, self.ir.Constant(self.i1, 0)])
            elif name == "popcntb":
                ctpop = self.intrinsic("llvm.ctpop", self.i32)
                r = c32(0)
                for k in range(4):
                    byte = b.and_(b.lshr(s, c32(8 * k)), c32(0xFF))
                    r = b.or_(r, b.shl(b.call(ctpop, [byte]), c32(8 * k)))
            else:  # prtyw
                r = b.and_(b.xor(b.xor(b.lshr(s, c32(24)), b.lshr(s, c32(16))),
                                 b.xor(b.lshr(s, c32(8)), s)), c32(1))
            self.set(f0, r)
            if rc:
                crv = r
        elif g == "cr_logic":
            cr = self.reg(I.S_CR)
            x = b.and_(b.lshr(cr, c32(31 - f1)), c32(1))
            y = b.and_(b.lshr(cr, c32(31 - f2)), c32(1))
            one = c32(1)
            t = {"crnor": lambda: b.xor(b.or_(x, y), one), "crandc": lambda: b.and_(x, b.xor(y, one)),
                 "crxor": lambda: b.xor(x, y), "crnand": lambda: b.xor(b.and_(x, y), one),
                 "crand": lambda: b.and_(x, y), "creqv": lambda: b.xor(b.xor(x, y), one),
                 "crorc": lambda: b.or_(x, b.xor(y, one)), "cror": lambda: b.or_(x, y)}[name]()
            sh = 31 - f0
            self.set(I.S_CR, b.or_(b.and_(cr, c32(~(1 << sh))), b.shl(t, c32(sh))))
        elif g == "cr_field":
            c = b.and_(b.lshr(self.reg(I.S_CR), c32(28 - 4 * f1)), c32(0xF))
            self.set_crf(f0, c)
        elif g == "sync":
            pass
        elif g == "vector":
            self.vector(f0, f1, f2, f3, f4)
        elif g == "branch":
            tgt = (f0 * 4) & I.M32 if fl & FLAG_AA else (pc + f0 * 4) & I.M32
            if fl & FLAG_LK:
                self.set(I.S_LR, c32(npc))
            self.retire(cost)
            self.goto(tgt)
            return
        elif g == "branch_cond":
            self.branch_cond(pc, name, fl, f0, f1, f2, cost)
            return
        else:  # pragma: no cover - _translatable admits only the groups above
            raise AssertionError(name)
        if crv is not None:
            self.cr0_from(crv)
        self.retire(cost)

    # vector unit (layout and semantics: twin.ppu.interp, "Vector unit") ----------
    def vload(self, off, nbytes):
        """Signed big-endian element of `nbytes` at byte offset `off` (i64) of the vector state."""
        b = self.b
        ty = {1: self.i8, 2: self.i16, 4: self.i32}[nbytes]
        v = b.load(b.bitcast(b.gep(self.vec, [off]), ty.as_pointer()), align=1)
        if nbytes > 1:
            v = self.bswap(v, ty)
        return b.sext(v, self.i64)

    def vstore(self, off, nbytes, v):
        """The low `nbytes` of v (i64), big-endian, at byte offset `off`."""
        b = self.b
        ty = {1: self.i8, 2: self.i16, 4: self.i32}[nbytes]
        t = b.trunc(v, ty)
        if nbytes > 1:
            t = self.bswap(t, ty)
        b.store(t, b.bitcast(b.gep(self.vec, [off]), ty.as_pointer()), align=1)

    def elements(self, n, body, w=1, c=0):
        """for i in range(n): body(i), only where the condition flag of element
        i's first byte holds (C != 0)."""
        b = self.b
        fn = self.fn
        pre = b.block
        head, work, done = fn.append_basic_block(), fn.append_basic_block(), fn.append_basic_block()
        b.branch(head)
        b.position_at_end(head)
        i = b.phi(self.i64)
        i.add_incoming(self.c64(0), pre)
        b.cbranch(b.icmp_signed("<", i, self.c64(n)), work, done)
        b.position_at_end(work)
        if c:
            flag = b.load(b.gep(self.vec, [b.add(self.c64(34 * self.nb), b.mul(i, self.c64(w)))]))
            on = b.icmp_unsigned("!=", b.and_(flag, self.ir.Constant(self.i8, 1 << (c - 1))),
                                 self.ir.Constant(self.i8, 0))
            yes, nxt = fn.append_basic_block(), fn.append_basic_block()
            b.cbranch(on, yes, nxt)
            b.position_at_end(yes)
            body(i)
            b.branch(nxt)
            b.position_at_end(nxt)
        else:
            body(i)
        i.add_incoming(b.add(i, self.c64(1)), b.block)
        b.branch(head)
        b.position_at_end(done)

    def vector(self, rt, ra, rb, c, annot):
        """One fxv instruction of _VKINDS (the interpreter's _valu, _vselcmp)."""
        b = self.b
        kind, w = annot & 0xFF, annot >> 8
        nb = self.nb
        c64 = self.c64
        ta, aa, ba, acc, fl = (rt & 31) * nb, (ra & 31) * nb, (rb & 31) * nb, 32 * nb, 34 * nb
        n = nb // w
        at = lambda base, i, size: b.add(c64(base), b.mul(i, c64(size)))
        if kind == I.K_SEL:
            if c == 0:
                self.elements(nb, lambda i: self.vstore(at(ta, i, 1), 1, self.vload(at(ba, i, 1), 1)))
            else:
                def sel(i):
                    flag = b.load(b.gep(self.vec, [at(fl, i, 1)]))
                    on = b.icmp_unsigned("!=", b.and_(flag, self.ir.Constant(self.i8, 1 << (c - 1))),
                                         self.ir.Constant(self.i8, 0))
                    v = b.select(on, self.vload(at(ba, i, 1), 1), self.vload(at(aa, i, 1), 1))
                    self.vstore(at(ta, i, 1), 1, v)
                self.elements(nb, sel)
        elif kind == I.K_CMP:
            def cmp(i):
                v = self.vload(at(aa, i, w), w)
                f = b.select(b.icmp_signed("==", v, c64(0)), c64(I.FLAG_EQ),
                             b.select(b.icmp_signed("<", v, c64(0)), c64(I.FLAG_LT), c64(I.FLAG_GT)))
                for j in range(w):
                    self.vstore(b.add(at(fl, i, w), c64(j)), 1, f)
            self.elements(n, cmp)
        elif kind == I.K_SPLAT:
            g = b.zext(self.reg(ra & 31), self.i64)
            self.elements(n, lambda i: self.vstore(at(ta, i, w), w, g), w, c)
        elif kind == I.K_SH:
            sh = rb - 32 if rb & 16 else rb
            um = (1 << (8 * w)) - 1

            def shift(i):
                u = b.and_(self.vload(at(aa, i, w), w), c64(um))
                v = b.shl(u, c64(sh)) if sh > 0 else (b.lshr(u, c64(-sh)) if sh < 0 else u)
                self.vstore(at(ta, i, w), w, v)
            self.elements(n, shift, w, c)
        else:
            ca, sa, cb, cab, cacc, sat, hi, toacc = (int(x) for x in I._VALU_TAB[kind])
            bits = 8 * w
            lim = 1 << (sat * bits - 1) if sat else 1 << 62

            def alu(i):
                x = c64(0)
                a = self.vload(at(aa, i, w), w) if (ca or cab) else None
                if ca:
                    x = b.add(x, b.shl(a, c64(bits * sa)))
                if cb or cab:
                    bv = self.vload(at(ba, i, w), w)
                    coef = c64(cb)
                    if cab:
                        coef = b.add(coef, b.mul(c64(cab), a))
                    x = b.add(x, b.mul(coef, bv))
                if cacc:
                    x = b.add(x, self.vload(at(acc, i, 2 * w), 2 * w))
                if sat:
                    x = b.select(b.icmp_signed("<", x, c64(-lim)), c64(-lim), x)
                    x = b.select(b.icmp_signed(">", x, c64(lim - 1)), c64(lim - 1), x)
                    x = b.ashr(x, c64(bits * hi))
                if toacc:
                    self.vstore(at(acc, i, 2 * w), 2 * w, x)
                else:
                    self.vstore(at(ta, i, w), w, x)
            self.elements(n, alu, w, c)

    def branch_cond(self, pc, name, fl, bo, bi, bd, cost):
        b = self.b
        c32 = self.c32
        npc = (pc + 4) & I.M32
        ok = self.ir.Constant(self.i1, 1)
        if name != "bcctr" and not bo & 4:
            ctr = b.sub(self.reg(I.S_CTR), c32(1))
            self.set(I.S_CTR, ctr)
            nz = b.icmp_unsigned("!=", ctr, c32(0))
            ok = b.xor(nz, self.ir.Constant(self.i1, 1)) if bo & 2 else nz
        if not bo & 16:
            bit = b.trunc(b.lshr(self.reg(I.S_CR), c32(31 - bi)), self.i1)
            cond = bit if (bo >> 3) & 1 else b.xor(bit, self.ir.Constant(self.i1, 1))
            ok = b.and_(ok, cond)
        if name == "bc":
            tgt = (bd * 4) & I.M32 if fl & FLAG_AA else (pc + bd * 4) & I.M32
        else:
            tgt = b.and_(self.reg(I.S_LR if name == "bclr" else I.S_CTR), c32(0xFFFFFFFC))
        if fl & FLAG_LK:
            self.set(I.S_LR, c32(npc))
        self.retire(cost)
        taken = self.fn.append_basic_block()
        fall = self.fn.append_basic_block()
        b.cbranch(ok, taken, fall)
        b.position_at_end(taken)
        if name == "bc":
            self.goto(tgt)
        else:
            b.store(tgt, self.next_pc)
            b.branch(self.dispatch)
        b.position_at_end(fall)
        self.goto(npc)



# ---- compile and install -----------------------------------------------------------
_llvm = None


def _target():
    global _llvm
    if _llvm is None:
        import llvmlite.binding as llvm
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        tm = llvm.Target.from_default_triple().create_target_machine(opt=OPT_LEVEL)
        _llvm = (llvm, tm)
    return _llvm


def _cache_dir():
    """Folder of compiled regions (object code), or None: $BSS_TWIN_CACHE_DIR,
    else $XDG_CACHE_HOME/bss-twin, else ~/.cache/bss-twin; `ppu-regions` in it."""
    global _disk
    if _disk is None:
        _disk = cache_folder("ppu-regions", "translated PPU code is compiled again in every process") or False
    return _disk or None


_disk = None
MAX_CACHE_FILES = 50_000


def _generator_key() -> bytes:
    """What the machine code of a region depends on besides the code itself:
    this generator, the interpreter's state layout, LLVM and the host CPU."""
    global _gen_key
    if _gen_key is None:
        llvm, tm = _target()
        h = hashlib.sha256()
        for f in (__file__, I.__file__):
            h.update(pathlib.Path(f).read_bytes())
        h.update(repr((llvm.llvm_version_info, llvm.get_host_cpu_name(),
                       llvm.get_host_cpu_features().flatten(), OPT_LEVEL)).encode())
        _gen_key = h.digest()
    return _gen_key


_gen_key = None


def _compile(blocks: dict, nb: int):
    """(engine, address) of the region's machine code: from the disk cache when
    this region was compiled before (by any process), else compiled now."""
    t0 = time.perf_counter()
    llvm, tm = _target()
    h = hashlib.sha256(_generator_key())
    h.update(nb.to_bytes(4, "big"))
    for pc in blocks:
        h.update(pc.to_bytes(4, "big"))
        for _, row in blocks[pc]:
            h.update(np.ascontiguousarray(row[:8]).tobytes())
    name = "region_" + h.hexdigest()[:32]
    folder = _cache_dir()
    path = folder / f"{name}.o" if folder else None
    if path is not None and path.exists():
        try:
            engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), tm)
            engine.add_object_file(llvm.ObjectFileRef.from_data(path.read_bytes()))
            engine.finalize_object()
            addr = engine.get_function_address(name)
            if addr:
                stats["disk"] += 1
                stats["load_s"] += time.perf_counter() - t0
                return engine, addr
        except Exception:          # a damaged file: compile again and replace it
            pass
    gen = _Gen(blocks, name, nb)
    gen.build()
    mod = llvm.parse_assembly(str(gen.module))
    mod.verify()
    pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=OPT_LEVEL))
    pb.getModulePassManager().run(mod, pb)
    engine = llvm.create_mcjit_compiler(mod, tm)
    if path is not None:
        engine.set_object_cache(lambda _m, buf: _save(path, buf), lambda _m: None)
    engine.finalize_object()
    addr = engine.get_function_address(name)
    stats["compile_s"] += time.perf_counter() - t0
    stats["regions"] += 1
    stats["instructions"] += sum(len(v) for v in blocks.values())
    return engine, addr


def _save(path: pathlib.Path, data: bytes) -> None:
    """Write atomically (a crash never leaves a partial file); skip when the
    folder is full or not writable (the region is then compiled again next time)."""
    try:
        if sum(1 for _ in path.parent.iterdir()) >= MAX_CACHE_FILES:
            return
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        pass


def translate_at(mem: np.ndarray, dec: np.ndarray, pc: int, vector_bytes: int = 16) -> bool:
    """Translate the region at `pc` (the interpreter found it hot) for vector
    registers of `vector_bytes` (16 per slice) and mark its entries in `dec`;
    False (and `pc` marked never-hot) when there is nothing to translate there."""
    w0 = pc >> 2
    if dec.shape[1] < I.DECODED_WIDTH or w0 >= dec.shape[0]:
        return False
    blocks = _discover(dec, pc)
    if pc not in blocks:
        # The hot word is one the interpreter executes itself (a loop that starts
        # with fxvinx, say): the region begins after it.
        dec[w0, I.COL_JIT] = -1
    if not blocks:
        return False
    words = sorted({p >> 2 for insns in blocks.values() for p, _ in insns})
    code = mem[:dec.shape[0] * 4].view(">u4")
    key = (pc, vector_bytes, tuple(sorted(blocks)), tuple(words), code[words].tobytes())
    got = _CACHE.get(key)
    if got is None:
        if len(_CACHE) >= MAX_REGIONS:
            stats["refused"] += 1
            dec[w0, I.COL_JIT] = -1
            return False
        got = _CACHE[key] = _compile(blocks, vector_bytes)
    else:
        stats["cached"] += 1
    addr = got[1]
    starts = np.array([p >> 2 for p in blocks], np.int64)
    dec[starts, I.COL_JIT] = 1
    dec[starts, I.COL_ADDR_LO] = np.int64(addr & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    dec[starts, I.COL_ADDR_HI] = np.int32(addr >> 32)
    dec[np.array(words, np.int64), I.COL_COVERED] |= 1
    return True


def report(file=sys.stderr) -> None:
    """One line of translation statistics (for benchmarks and debugging)."""
    print(f"ppu jit: {stats['regions']} regions compiled ({stats['instructions']} instructions, "
          f"{stats['compile_s']:.2f} s), {stats['disk']} loaded from the cache ({stats['load_s']:.2f} s)",
          file=file)
