"""Hot-loop translation: compile a PPU inner loop into a numba function.

The interpreter counts taken backward `b`/`bc` branches per target; when a
target becomes hot (`interp.run(hot_threshold=...)`) it leaves the run loop
(internal status HOT) and the driver asks `loop_function` for a translation of
the loop starting there.  A loop is translatable when it is one straight-line
block from the target to a `b`/`bc` (AA=0, LK=0) back to the target, made of
the scalar subset below; otherwise the target is marked never-hot.

The translated function keeps the GPRs, CR, XER and CTR in local variables,
runs whole iterations while they fit the cycle budget, and leaves with the
exact interpreter state at an instruction boundary:

* before a load or store whose address is misaligned, outside memory, on the
  register bus (bit 31) or, for stores, inside the loop's own code: the
  interpreter then executes that instruction (fault, interrupt, bus exit,
  self-modifying code) as usual;
* after the closing branch falls through;
* at the loop start when the next iteration would not fit the budget.

Stores mark decoded words stale like the interpreter.  The driver only calls a
translation when DEC is 0 and no decrementer interrupt is pending (the subset
cannot change DEC, MSR or SPRs other than CR/XER/CTR), so no asynchronous
interrupt can fall inside a translated iteration.  Translations are cached by
(start address, loop words) for the process.

Subset: addi addis mulli ori oris xori xoris andi. andis. add subf neg mullw
mulhw mulhwu (and their . forms, no o forms) and andc or xor nor nand eqv orc
slw srw extsb extsh (and . forms) rlwinm rlwnm rlwimi (and . forms) cmp cmpl
cmpi cmpli, lwz lbz lhz lha stw stb sth, their u forms and x forms (lwzx ...).
"""
from __future__ import annotations

import pathlib

import numpy as np
from numba import njit

from ._decode import FLAG_AA, FLAG_LK, FLAG_OE, FLAG_RC, OPS

__all__ = ["loop_function", "MAX_LOOP_WORDS"]

MAX_LOOP_WORDS = 64
M = 0xFFFFFFFF
_CACHE: dict[tuple, object] = {}

# load/store: name -> (size, is_load, sign-extend, update, indexed)
_LS = {}
for _n, _sz, _ld, _sg in (("lwz", 4, 1, 0), ("lbz", 1, 1, 0), ("lhz", 2, 1, 0), ("lha", 2, 1, 1),
                          ("stw", 4, 0, 0), ("stb", 1, 0, 0), ("sth", 2, 0, 0)):
    _LS[_n] = (_sz, _ld, _sg, 0, 0)
    _LS[_n + "x"] = (_sz, _ld, _sg, 0, 1)
    _LS[_n + "u"] = (_sz, _ld, _sg, 1, 0)
    _LS[_n + "ux"] = (_sz, _ld, _sg, 1, 1)

_LOGIC = {"and": "{s} & {b}", "andc": "{s} & (~{b} & M)", "or": "{s} | {b}", "xor": "{s} ^ {b}",
          "nor": "~({s} | {b}) & M", "nand": "~({s} & {b}) & M", "eqv": "~({s} ^ {b}) & M",
          "orc": "({s} | (~{b} & M))"}


def _mask(mb: int, me: int) -> int:
    m1 = M >> mb
    m2 = (M << (31 - me)) & M
    return (m1 & m2) if mb <= me else (m1 | m2)


def _r(k: int) -> str:
    return f"r{k}"


def _ra0(k: int) -> str:
    return "0" if k == 0 else _r(k)


class _Untranslatable(Exception):
    pass


def _body(name: str, fl: int, f: list[int], pc: int, k: int, lo: int, hi: int) -> list[str]:
    """Python lines for one instruction (k = its index in the loop)."""
    if fl & FLAG_OE:
        raise _Untranslatable(name)
    rc = fl & FLAG_RC
    out: list[str] = []
    rec = lambda v: out.append(f"cr = (cr & 0x0FFFFFFF) | (_c0({v}, xer) << 28)") if rc else None
    if name in ("addi", "addis"):
        imm = f[2] << 16 if name == "addis" else f[2]
        out.append(f"{_r(f[0])} = ({_ra0(f[1])} + {imm}) & M")
    elif name == "mulli":
        out.append(f"{_r(f[0])} = (_s32({_r(f[1])}) * {f[2]}) & M")
    elif name in ("ori", "oris", "xori", "xoris", "andi.", "andis."):
        imm = f[2] << 16 if name.rstrip(".").endswith("s") else f[2]
        opch = {"o": "|", "x": "^", "a": "&"}[name[0]]
        out.append(f"{_r(f[0])} = {_r(f[1])} {opch} {imm}")
        if name.endswith("."):
            out.append(f"cr = (cr & 0x0FFFFFFF) | (_c0({_r(f[0])}, xer) << 28)")
    elif name in _LOGIC or name in ("slw", "srw"):
        s, b = _r(f[1]), _r(f[2])
        if name == "slw":
            expr = f"(0 if ({b} & 63) > 31 else ({s} << ({b} & 63)) & M)"
        elif name == "srw":
            expr = f"(0 if ({b} & 63) > 31 else {s} >> ({b} & 63))"
        else:
            expr = _LOGIC[name].format(s=s, b=b)
        out.append(f"{_r(f[0])} = {expr}")
        rec(_r(f[0]))
    elif name in ("extsb", "extsh"):
        bit, ext = (0x80, 0xFFFFFF00) if name == "extsb" else (0x8000, 0xFFFF0000)
        s = _r(f[1])
        out.append(f"{_r(f[0])} = ({s} | {ext}) if {s} & {bit} else ({s} & {~ext & M})")
        rec(_r(f[0]))
    elif name in ("add", "subf", "neg", "mullw", "mulhw", "mulhwu"):
        a, b = _r(f[1]), _r(f[2]) if name != "neg" else "0"
        expr = {"add": f"({a} + {b}) & M", "subf": f"((~{a} & M) + {b} + 1) & M",
                "neg": f"((~{a} & M) + 1) & M", "mullw": f"(_s32({a}) * _s32({b})) & M",
                "mulhw": f"((_s32({a}) * _s32({b})) >> 32) & M",
                "mulhwu": f"((({a} >> 16) * {b} + ((({a} & 0xFFFF) * {b}) >> 16)) >> 16)"}[name]
        out.append(f"{_r(f[0])} = {expr}")
        rec(_r(f[0]))
    elif name in ("rlwinm", "rlwnm", "rlwimi"):
        m = _mask(f[3], f[4])
        n = f"({_r(f[2])} & 31)" if name == "rlwnm" else str(f[2])
        rot = f"_rotl({_r(f[1])}, {n})"
        if name == "rlwimi":
            out.append(f"{_r(f[0])} = ({rot} & {m}) | ({_r(f[0])} & {~m & M})")
        else:
            out.append(f"{_r(f[0])} = {rot} & {m}")
        rec(_r(f[0]))
    elif name in ("cmp", "cmpl", "cmpi", "cmpli"):
        a = _r(f[2])
        b = _r(f[3]) if name in ("cmp", "cmpl") else str(f[3] & M)
        if name in ("cmp", "cmpi"):
            a, b = f"_s32({a})", f"_s32({b})"
        sh = 28 - 4 * f[0]
        out.append(f"_a = {a}")
        out.append(f"_b = {b}")
        out.append(f"_c = (8 if _a < _b else (4 if _a > _b else 2)) | (1 if xer & 0x80000000 else 0)")
        out.append(f"cr = (cr & {~(0xF << sh) & M}) | (_c << {sh})")
    elif name in _LS:
        size, is_load, sgn, upd, indexed = _LS[name]
        if indexed:
            ra, ea = f[1], f"({_ra0(f[1])} + {_r(f[2])}) & M"
        else:
            ra, ea = f[2], f"({_ra0(f[2])} + {f[1]}) & M"
        out.append(f"ea = {ea}")
        bad = f"ea + {size} > nmem" + (f" or ea & {size - 1}" if size > 1 else "")
        if not is_load:
            bad += f" or (ea + {size} > {lo} and ea < {hi})"
        out.append(f"if {bad}:")
        out.append(f"    k = {k}")
        out.append("    break")
        if is_load:
            load = " | ".join(f"(np.int64(mem[ea + {i}]) << {8 * (size - 1 - i)})" for i in range(size))
            out.append(f"_v = {load}")
            if sgn:
                out.append("if _v & 0x8000:")
                out.append("    _v |= 0xFFFF0000")
            out.append(f"{_r(f[0])} = _v")
        else:
            for i in range(size):
                out.append(f"mem[ea + {i}] = ({_r(f[0])} >> {8 * (size - 1 - i)}) & 0xFF")
            out.append("if (ea >> 2) < nwords:")
            out.append("    dec[ea >> 2, 0] = OP_STALE")
        if upd:
            out.append(f"{_r(ra)} = ea")
    else:
        raise _Untranslatable(name)
    return out


def _regs_used(lines: list[str]) -> list[int]:
    import re
    return sorted({int(m) for line in lines for m in re.findall(r"\br(\d+)\b", line)})


def translate(rows: np.ndarray, start: int) -> tuple[str, int] | None:
    """(source of the loop function, end address) for decoded rows starting at
    `start`, or None."""
    body: list[str] = []
    costs: list[int] = []
    hi = start
    closing = None
    for k in range(MAX_LOOP_WORDS):
        row = rows[k] if k < len(rows) else None
        if row is None:
            return None
        op, fl, cyc = int(row[0]), int(row[1]), int(row[2])
        f = [int(x) for x in row[3:8]]
        if op < 0:
            return None
        name = OPS[op]
        pc = start + 4 * k
        if name in ("b", "bc"):
            if fl & (FLAG_AA | FLAG_LK):
                return None
            disp = f[0] if name == "b" else f[2]
            if pc + 4 * disp != start:
                return None
            closing = (name, f, cyc, pc)
            hi = pc + 4
            break
        body.append((name, fl, f, pc, cyc))
        costs.append(cyc)
    if closing is None:
        return None
    lines: list[str] = []
    try:
        for k, (name, fl, f, pc, cyc) in enumerate(body):
            lines += _body(name, fl, f, pc, k, start, hi)
    except _Untranslatable:
        return None
    name, f, bcyc, bpc = closing
    n = len(body)
    total = sum(costs) + bcyc
    prefix = [sum(costs[:k]) for k in range(n + 1)]
    # closing branch: leaves the loop with k = n + 1 (everything retired, pc after the branch)
    br: list[str] = []
    if name == "b":
        pass
    else:
        bo, bi = f[0], f[1]
        conds = []
        if not bo & 4:
            br.append("ctr = (ctr - 1) & M")
            conds.append("(ctr != 0)" if not bo & 2 else "(ctr == 0)")
        if not bo & 16:
            want = (bo >> 3) & 1
            conds.append(f"(((cr >> {31 - bi}) & 1) == {want})")
        if conds:
            br.append(f"if not ({' and '.join(conds)}):")
            br.append(f"    k = {n + 1}")
            br.append("    break")
    regs = _regs_used(lines + br)
    src = [f"def loop(mem, st, dec, budget):",
           "    nmem = mem.shape[0]",
           "    nwords = dec.shape[0]"]
    src += [f"    r{r} = st[{r}]" for r in regs]
    src += ["    cr = st[32]", "    xer = st[33]", "    ctr = st[35]",
            "    cycles = st[49]", "    insns = st[51]", "    k = 0", "    iters = 0",
            "    while True:",
            f"        if cycles + {total} > budget:",
            "            k = 0",
            "            break"]
    src += ["        " + ln for ln in lines + br]
    src += [f"        cycles += {total}", f"        insns += {n + 1}", "        iters += 1"]
    # exits: k in 0..n = before body instruction k (pc = start + 4k); n + 1 = after the branch
    prefix_arr = ", ".join(str(p) for p in prefix + [total])
    src += [f"    pre = ({prefix_arr},)",
            f"    if k == {n + 1}:",
            f"        cycles += {total}",
            f"        insns += {n + 1}",
            f"        st[48] = {hi}",
            "    else:",
            "        for j in range(k):",
            "            cycles += pre[j + 1] - pre[j]",
            "        insns += k",
            f"        st[48] = {start} + 4 * k"]
    src += [f"    st[{r}] = r{r}" for r in regs]
    src += ["    st[32] = cr", "    st[33] = xer", "    st[35] = ctr", "    st[49] = cycles",
            "    st[51] = insns", "    return iters"]
    return "\n".join(src) + "\n", hi


# Helpers of the generated loops: plain njit functions, which LLVM inlines.
# numba-level inlining (inline="always") into the exec-generated loop lost a
# variable's type in some loops (TypingError on an rlwinm after loads/stores).
@njit(cache=True)
def _s32(x):
    x &= 0xFFFFFFFF
    return x - 0x100000000 if x & 0x80000000 else x


@njit(cache=True)
def _rotl(x, n):
    n &= 31
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF if n else x


@njit(cache=True)
def _c0(v, xer):
    s = _s32(v)
    c = 8 if s < 0 else (4 if s > 0 else 2)
    return c | (1 if xer & 0x80000000 else 0)


def loop_function(mem: np.ndarray, decoded: np.ndarray, start: int):
    """(compiled loop, end address) at `start`, or None when the code there is
    not a translatable loop."""
    w0 = start >> 2
    got = translate(decoded[w0:w0 + MAX_LOOP_WORDS], start)
    if got is None:
        return None
    src, hi = got
    key = (start, src)
    fn = _CACHE.get(key)
    if fn is None:
        fn = _CACHE[key] = njit(_load_loop(src).loop)
    return fn, hi


_PRELUDE = """# Generated by twin.ppu.translate from the PPU instruction table; safe to delete.
import numpy as np
from twin.ppu.interp import OP_STALE
from twin.ppu.translate import M, _c0, _rotl, _s32

"""


def _load_loop(src: str):
    """The generated loop as a module imported from a file (content-addressed, in
    the temp directory): numba compiles exec-generated functions wrongly in some
    cases (a TypingError on an rlwinm after loads and stores, tests/ppu_exec/
    test_ppu_translate.py); imported from a file they compile as written."""
    import hashlib
    import importlib.util
    import os
    import sys
    import tempfile
    text = _PRELUDE + src
    name = "bss_twin_loop_" + hashlib.sha1(text.encode()).hexdigest()[:20]
    folder = pathlib.Path(tempfile.gettempdir()) / f"bss-twin-loops-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{name}.py"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)          # atomic: a concurrent process sees all or nothing
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module          # numba's cache finds functions by module name
    spec.loader.exec_module(module)
    return module
