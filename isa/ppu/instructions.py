"""The PPU ("nux") instruction set as data: one record per instruction.

Every tool reads this table: the encoder and decoder (`codec`), the assembler
(`asm`), the disassembler (`disasm`) and the interpreter's predecoder (through
`codec.decode_tables`).  Nothing else restates a bit position or an opcode.

Bit positions use IBM numbering (bit 0 is the most significant bit of the
32-bit word), as in the Power ISA book, so table rows can be checked against it
by eye.  `Field.shift` converts to an ordinary right shift.

Extended mnemonics (`li`, `beq`, `slwi`, ...) are data too: an `Alias` names
its base instruction and gives each base field as a small linear expression of
the alias operands.  The assembler evaluates the expressions; the disassembler
solves them back (they are linear in one unknown each) and prefers the first
alias, in table order, whose re-encoding reproduces the word.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

# --------------------------------------------------------------------------
# Bit fields


@dataclass(frozen=True)
class Field:
    name: str
    start: int       # IBM bit number of the most significant bit
    width: int

    @property
    def shift(self) -> int:
        return 32 - self.start - self.width

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.shift

    def insert(self, value: int) -> int:
        return (value & ((1 << self.width) - 1)) << self.shift

    def extract(self, word: int) -> int:
        return (word >> self.shift) & ((1 << self.width) - 1)


def _f(name: str, start: int, width: int) -> Field:
    return Field(name, start, width)


FIELDS = {f.name: f for f in (
    _f("OPCD", 0, 6),
    _f("RT", 6, 5), _f("RA", 11, 5), _f("RB", 16, 5),
    _f("BF", 6, 3), _f("L", 10, 1), _f("BFA", 11, 3),
    _f("BO", 6, 5), _f("BI", 11, 5), _f("BD", 16, 14), _f("BH", 19, 2),
    _f("LI", 6, 24), _f("AA", 30, 1), _f("LK", 31, 1), _f("Rc", 31, 1),
    _f("OE", 21, 1), _f("D", 16, 16),
    _f("SH", 16, 5), _f("MB", 21, 5), _f("ME", 26, 5),
    _f("BT", 6, 5), _f("BA", 11, 5), _f("BB", 16, 5),
    _f("TO", 6, 5), _f("SPR", 11, 10), _f("FXM", 12, 8), _f("bit11", 11, 1),
    _f("XO10", 21, 10), _f("XO9", 22, 9),
    # fxv vector form: 4<<26 | VRT<<21 | VRA<<16 | VRB<<11 | XO<<2 | C
    _f("VXO", 21, 9), _f("C", 30, 2),
    # Not an instruction field: bounds the SPRG number operand of mfsprg/mtsprg (0-3).
    _f("SPRGN", 0, 2),
)}

# --------------------------------------------------------------------------
# Operand kinds
#
# A kind says how a value is written in assembly, how it is range-checked and
# how it maps to field bits.  `signed` ranges are checked before masking.


@dataclass(frozen=True)
class Kind:
    name: str
    signed: bool = False
    regclass: str | None = None   # register-name class accepted ("r", "cr", "v")
    scale: int = 1                # stored value = value // scale (branch displacements)
    relative: bool = False        # value is a target address, stored relative to the insn
    spr: bool = False             # 10-bit SPR/TBR number stored with its halves swapped
    doc: str = ""


GPR = Kind("gpr", regclass="r", doc="general purpose register r0-r31")
GPR0 = Kind("gpr0", regclass="r", doc="register, or the literal 0 when 0 (RA|0)")
CRF = Kind("crf", regclass="cr", doc="condition register field cr0-cr7")
CRB = Kind("crb", doc="condition register bit 0-31 (4*crN+lt/gt/eq/so)")
SIMM = Kind("simm", signed=True, doc="signed immediate")
UIMM = Kind("uimm", doc="unsigned immediate")
# GNU as accepts -32768..65535 in these 16-bit fields (sign is not checked).
SUIMM = Kind("suimm", doc="16-bit immediate, signed or unsigned")
BDREL = Kind("bdrel", signed=True, scale=4, relative=True, doc="branch target, relative")
BDABS = Kind("bdabs", signed=True, scale=4, doc="branch target, absolute")
SPRN = Kind("spr", spr=True, doc="special purpose register number")
VR = Kind("vr", regclass="v", doc="vector register 0-31")
COND = Kind("cond", doc="vector condition: 0 always, 1 gt, 2 lt, 3 eq")


@dataclass(frozen=True)
class Operand:
    name: str             # field name in FIELDS
    kind: Kind
    optional: bool = False    # may be omitted in assembly; then `default`
    default: int = 0
    fieldname: str | None = None  # alias operands: the base field bounding the value

    @property
    def field(self) -> Field:
        return FIELDS[self.fieldname or self.name]

    def value_range(self) -> tuple[int, int]:
        """Legal range of the assembly-level value."""
        w, k = self.field.width, self.kind
        if k is SUIMM:
            return -(1 << (w - 1)), (1 << w) - 1
        if k.signed:
            return -(1 << (w - 1)) * k.scale, ((1 << (w - 1)) - 1) * k.scale
        return 0, ((1 << w) - 1) * k.scale


def _op(spec: str, kind: Kind) -> Operand:
    """'RA' -> required, 'BF?' -> optional with default 0."""
    if spec.endswith("?"):
        return Operand(spec[:-1], kind, optional=True)
    return Operand(spec, kind)


# --------------------------------------------------------------------------
# Instructions


# Semantic groups: what kind of operation a row is.  The interpreter dispatches
# on the group first (twin.ppu._decode derives per-op group ids from the rows;
# twin.ppu.interp checks at import that it implements every group in use).
GROUPS = (
    "add_imm",         # addi addis
    "carry_imm",       # addic addic. subfic
    "logic_imm",       # ori oris xori xoris andi. andis.
    "compare",         # cmp cmpl cmpi cmpli
    "trap",            # tw twi
    "load",            # lbz lhz lha lwz and their u / x / ux forms (see `Access`)
    "store",           # stb sth stw and their u / x / ux forms
    "load_multiple",   # lmw
    "store_multiple",  # stmw
    "branch",          # b
    "branch_cond",     # bc bclr bcctr
    "rotate",          # rlwinm rlwnm rlwimi
    "cr_field",        # mcrf
    "cr_logic",        # crand crnor ...
    "return",          # rfi rfci rfmci
    "logic",           # and or xor ... (X-form, RB register)
    "shift",           # slw srw sraw srawi
    "bit_count",       # cntlzw popcntb prtyw
    "extend",          # extsb extsh
    "wait",            # wait
    "msr",             # mfmsr mtmsr
    "sync",            # sync
    "arith",           # XO-form add / subtract (add subf neg adde ... addme)
    "mul_div",         # mulli mullw mulhw mulhwu divw divwu
    "cr_move",         # mfcr mfocrf mtcrf mtocrf
    "spr_move",        # mfspr mtspr
    "vector",          # fxv*
    "external",        # eciwx ecowx (not executed by the PPU)
)


@dataclass(frozen=True)
class Access:
    """How a load or store row reaches memory."""
    size: int               # bytes per register (lmw/stmw: 4, one word per register)
    store: bool = False
    update: bool = False    # RA receives the effective address
    sign: bool = False      # sign-extend the loaded value (lha)
    indexed: bool = False   # EA = (RA|0) + RB; else (RA|0) + D


@dataclass(frozen=True)
class Instruction:
    mnemonic: str
    form: str
    primary: int
    xo: int | None                 # extended opcode, in field `xo_field`
    xo_field: str | None
    operands: tuple[Operand, ...]
    fixed: tuple[tuple[str, int], ...] = ()  # other constant fields (Rc, OE, AA, LK, bit11)
    paren: int | None = None       # index of the operand written as D(RA) "(RA)"
    cycles: int = 1
    doc: str = ""
    group: str = ""                # semantic group, one of GROUPS
    access: Access | None = None   # loads and stores only

    @property
    def opcode_value(self) -> int:
        w = self.primary << 26
        if self.xo_field is not None:
            w |= FIELDS[self.xo_field].insert(self.xo)
        for name, v in self.fixed:
            w |= FIELDS[name].insert(v)
        return w

    @property
    def opcode_mask(self) -> int:
        """Bits that identify the instruction: everything outside operand fields.

        Unused (reserved) bits must be zero, so decode is the exact inverse of
        encode and stray words are reported as illegal rather than guessed."""
        used = 0
        for op in self.operands:
            used |= op.field.mask
        return 0xFFFFFFFF & ~used

    @property
    def flags(self) -> dict[str, int]:
        return dict(self.fixed)


# Operand shorthands used by the table rows below.
_KIND_OF = {
    "RT": GPR, "RS": GPR, "RA": GPR, "RB": GPR, "RA0": GPR0,
    "BF": CRF, "BFA": CRF, "L": UIMM, "BO": UIMM, "BI": CRB, "BH": UIMM,
    "BT": CRB, "BA": CRB, "BB": CRB, "TO": UIMM, "SPRGN": UIMM,
    "SI": SIMM, "UI": UIMM, "SUI": SUIMM, "D": SIMM,
    "SH": UIMM, "MB": UIMM, "ME": UIMM, "SPR": SPRN, "FXM": UIMM,
}
# Shorthand name -> field name, where they differ.
_FIELD_OF = {"RS": "RT", "RA0": "RA", "SI": "D", "UI": "D", "SUI": "D"}


def _ops(spec: str) -> tuple[Operand, ...]:
    """'RT,RA,SI' -> operands; 'BF?' makes an optional operand."""
    out = []
    for s in filter(None, spec.split(",")):
        opt = s.endswith("?")
        s = s.rstrip("?")
        op = Operand(_FIELD_OF.get(s, s), _KIND_OF[s], optional=opt)
        # RS and RT share bits 6-10 but RS/RA swap roles in logical ops; the
        # field name is all that matters for encoding.
        out.append(op)
    return tuple(out)


_T: list[Instruction] = []


def _ins(mn, form, primary, xo, xo_field, ops, fixed=(), paren=None, cycles=1, doc="", *, group,
         access=None):
    assert group in GROUPS, f"{mn}: unknown group {group}"
    _T.append(Instruction(mn, form, primary, xo, xo_field, _ops(ops) if isinstance(ops, str) else ops,
                          tuple(fixed), paren, cycles, doc, group, access))


# ---- D-form --------------------------------------------------------------
_ins("twi", "D", 3, None, None, "TO,RA,SI", group="trap")
_ins("mulli", "D", 7, None, None, "RT,RA,SI", cycles=4, group="mul_div")
_ins("subfic", "D", 8, None, None, "RT,RA,SI", group="carry_imm")
_ins("cmpli", "D", 10, None, None, "BF,L?,RA,UI", group="compare")
_ins("cmpi", "D", 11, None, None, "BF,L?,RA,SI", group="compare")
_ins("addic", "D", 12, None, None, "RT,RA,SI", group="carry_imm")
_ins("addic.", "D", 13, None, None, "RT,RA,SI", group="carry_imm")
_ins("addi", "D", 14, None, None, "RT,RA0,SI", group="add_imm")
_ins("addis", "D", 15, None, None, "RT,RA0,SUI", group="add_imm")
for _mn, _p in (("ori", 24), ("oris", 25), ("xori", 26), ("xoris", 27),
                ("andi.", 28), ("andis.", 29)):
    _ins(_mn, "D", _p, None, None, "RA,RS,UI", group="logic_imm")
# Loads / stores: (mnemonic, primary, X-form xo or None, cycles, group, access).
_MEM = (
    ("lwz", 32, 23, 2, "load", Access(4)), ("lwzu", 33, 55, 2, "load", Access(4, update=True)),
    ("lbz", 34, 87, 2, "load", Access(1)), ("lbzu", 35, 119, 2, "load", Access(1, update=True)),
    ("stw", 36, 151, 1, "store", Access(4, store=True)),
    ("stwu", 37, 183, 1, "store", Access(4, store=True, update=True)),
    ("stb", 38, 215, 1, "store", Access(1, store=True)),
    ("stbu", 39, 247, 1, "store", Access(1, store=True, update=True)),
    ("lhz", 40, 279, 2, "load", Access(2)), ("lhzu", 41, 311, 2, "load", Access(2, update=True)),
    ("lha", 42, 343, 2, "load", Access(2, sign=True)),
    ("lhau", 43, 375, 2, "load", Access(2, update=True, sign=True)),
    ("sth", 44, 407, 1, "store", Access(2, store=True)),
    ("sthu", 45, 439, 1, "store", Access(2, store=True, update=True)),
    ("lmw", 46, None, 2, "load_multiple", Access(4)),
    ("stmw", 47, None, 1, "store_multiple", Access(4, store=True)),
)
for _mn, _p, _xo, _cyc, _grp, _acc in _MEM:
    _ins(_mn, "D", _p, None, None, "RT,D,RA0", paren=2, cycles=_cyc, group=_grp, access=_acc)

# ---- I / B-form branches --------------------------------------------------
for _sfx, _aa, _lk in (("", 0, 0), ("l", 0, 1), ("a", 1, 0), ("la", 1, 1)):
    _li = Operand("LI", BDABS if _aa else BDREL)
    _ins("b" + _sfx, "I", 18, None, None, (_li,), (("AA", _aa), ("LK", _lk)), group="branch")
    _bd = Operand("BD", BDABS if _aa else BDREL)
    _ins("bc" + _sfx, "B", 16, None, None, _ops("BO,BI") + (_bd,), (("AA", _aa), ("LK", _lk)),
         group="branch_cond")

# ---- M-form rotates ---------------------------------------------------------
for _mn, _p, _ops_s in (("rlwimi", 20, "RA,RS,SH,MB,ME"), ("rlwinm", 21, "RA,RS,SH,MB,ME"),
                        ("rlwnm", 23, "RA,RS,RB,MB,ME")):
    _ins(_mn, "M", _p, None, None, _ops_s, (("Rc", 0),), group="rotate")
    _ins(_mn + ".", "M", _p, None, None, _ops_s, (("Rc", 1),), group="rotate")

# ---- XL-form (primary 19) ----------------------------------------------------
_ins("mcrf", "XL", 19, 0, "XO10", "BF,BFA", group="cr_field")
for _mn, _xo, _lk in (("bclr", 16, 0), ("bclrl", 16, 1), ("bcctr", 528, 0), ("bcctrl", 528, 1)):
    _ins(_mn, "XL", 19, _xo, "XO10", "BO,BI,BH?", (("LK", _lk),), group="branch_cond")
for _mn, _xo in (("crnor", 33), ("crandc", 129), ("crxor", 193), ("crnand", 225),
                 ("crand", 257), ("creqv", 289), ("crorc", 417), ("cror", 449)):
    _ins(_mn, "XL", 19, _xo, "XO10", "BT,BA,BB", group="cr_logic")
_ins("rfmci", "XL", 19, 38, "XO10", "", group="return")
_ins("rfi", "XL", 19, 50, "XO10", "", group="return")
_ins("rfci", "XL", 19, 51, "XO10", "", group="return")

# ---- X-form (primary 31) -----------------------------------------------------
_ins("cmp", "X", 31, 0, "XO10", "BF,L?,RA,RB", group="compare")
_ins("cmpl", "X", 31, 32, "XO10", "BF,L?,RA,RB", group="compare")
_ins("tw", "X", 31, 4, "XO10", "TO,RA,RB", group="trap")
# Loads/stores indexed: RT,RA|0,RB (the D-form rows' access, indexed).
for _mn, _p, _xo, _cyc, _grp, _acc in _MEM:
    if _xo is not None:
        _ins(_mn[:-1] + "ux" if _acc.update else _mn + "x", "X", 31, _xo, "XO10", "RT,RA0,RB",
             cycles=_cyc, group=_grp, access=Access(_acc.size, _acc.store, _acc.update, _acc.sign, True))
_ins("eciwx", "X", 31, 310, "XO10", "RT,RA0,RB", cycles=2, group="external")
_ins("ecowx", "X", 31, 438, "XO10", "RT,RA0,RB", cycles=1, group="external")
# Logical / shifts with record forms: RA,RS,RB.
for _mn, _xo in (("slw", 24), ("and", 28), ("andc", 60), ("nor", 124), ("eqv", 284),
                 ("xor", 316), ("orc", 412), ("or", 444), ("nand", 476), ("srw", 536),
                 ("sraw", 792)):
    _grp = "shift" if _mn in ("slw", "srw", "sraw") else "logic"
    _ins(_mn, "X", 31, _xo, "XO10", "RA,RS,RB", (("Rc", 0),), group=_grp)
    _ins(_mn + ".", "X", 31, _xo, "XO10", "RA,RS,RB", (("Rc", 1),), group=_grp)
_ins("srawi", "X", 31, 824, "XO10", "RA,RS,SH", (("Rc", 0),), group="shift")
_ins("srawi.", "X", 31, 824, "XO10", "RA,RS,SH", (("Rc", 1),), group="shift")
for _mn, _xo, _grp in (("cntlzw", 26, "bit_count"), ("extsh", 922, "extend"), ("extsb", 954, "extend")):
    _ins(_mn, "X", 31, _xo, "XO10", "RA,RS", (("Rc", 0),), group=_grp)
    _ins(_mn + ".", "X", 31, _xo, "XO10", "RA,RS", (("Rc", 1),), group=_grp)
_ins("popcntb", "X", 31, 122, "XO10", "RA,RS", group="bit_count")
_ins("prtyw", "X", 31, 154, "XO10", "RA,RS", group="bit_count")
_ins("wait", "X", 31, 62, "XO10", "", doc="stop until an interrupt (0x7C00007C)", group="wait")
_ins("mfmsr", "X", 31, 83, "XO10", "RT", group="msr")
_ins("mtmsr", "X", 31, 146, "XO10", "RS", group="msr")
_ins("sync", "X", 31, 598, "XO10", "", group="sync")

# ---- XO-form arithmetic: o and . variants -----------------------------------
for _mn, _xo, _ops_s, _cyc in (
        ("subfc", 8, "RT,RA,RB", 1), ("addc", 10, "RT,RA,RB", 1), ("mulhwu", 11, "RT,RA,RB", 4),
        ("subf", 40, "RT,RA,RB", 1), ("mulhw", 75, "RT,RA,RB", 4), ("neg", 104, "RT,RA", 1),
        ("subfe", 136, "RT,RA,RB", 1), ("adde", 138, "RT,RA,RB", 1),
        ("subfze", 200, "RT,RA", 1), ("addze", 202, "RT,RA", 1),
        ("subfme", 232, "RT,RA", 1), ("addme", 234, "RT,RA", 1),
        ("mullw", 235, "RT,RA,RB", 4), ("add", 266, "RT,RA,RB", 1),
        ("divwu", 459, "RT,RA,RB", 31), ("divw", 491, "RT,RA,RB", 31)):
    # mulhw/mulhwu have no OE form in the ISA.
    _oes = (0,) if _mn in ("mulhw", "mulhwu") else (0, 1)
    for _oe in _oes:
        for _rc in (0, 1):
            _ins(_mn + ("o" if _oe else "") + ("." if _rc else ""), "XO", 31, _xo, "XO9", _ops_s,
                 (("OE", _oe), ("Rc", _rc)), cycles=_cyc,
                 group="mul_div" if _mn.startswith(("mul", "div")) else "arith")

# ---- XFX-form: CR and SPR moves ---------------------------------------------
_ins("mfcr", "XFX", 31, 19, "XO10", "RT", (("bit11", 0),), group="cr_move")
_ins("mfocrf", "XFX", 31, 19, "XO10", "RT,FXM", (("bit11", 1),), group="cr_move")
_ins("mtcrf", "XFX", 31, 144, "XO10", "FXM,RS", (("bit11", 0),), group="cr_move")
_ins("mtocrf", "XFX", 31, 144, "XO10", "FXM,RS", (("bit11", 1),), group="cr_move")
_ins("mfspr", "XFX", 31, 339, "XO10", "RT,SPR", group="spr_move")
_ins("mtspr", "XFX", 31, 467, "XO10", "SPR,RS", group="spr_move")

SCALAR_COUNT = len(_T)

# ---- fxv vector extension (primary 4) ---------------------------------------
# Operand shapes (the project's documented choice; see docs/ppu.md):
_VVV = (Operand("RT", VR), Operand("RA", VR), Operand("RB", VR))
_VVS = (Operand("RT", VR), Operand("RA", VR), Operand("RB", SIMM))
_VGG = (Operand("RT", VR), Operand("RA", GPR0), Operand("RB", GPR))
_VG = (Operand("RT", VR), Operand("RA", GPR))
_V = (Operand("RA", VR),)
_C = (Operand("C", COND, optional=True),)

VECTOR_OPS: list[tuple[str, int, tuple[Operand, ...], int]] = []  # (mnemonic, xo, shape, cycles)
for _h, _b, _xh, _xb, _shape in (
        ("fxvmahm", "fxvmabm", 12, 13, _VVV), ("fxvmtach", "fxvmtacb", 15, 14, _V),
        ("fxvmahfs", "fxvmabfs", 28, 29, _VVV), ("fxvmtachf", "fxvmtacbf", 31, 30, _V),
        ("fxvmatachm", "fxvmatacbm", 44, 45, _VVV), ("fxvmatachfs", "fxvmatacbfs", 60, 61, _VVV),
        ("fxvmulhm", "fxvmulbm", 76, 77, _VVV), ("fxvmulhfs", "fxvmulbfs", 92, 93, _VVV),
        ("fxvmultachm", "fxvmultacbm", 108, 109, _VVV),
        ("fxvmultachfs", "fxvmultacbfs", 124, 125, _VVV),
        ("fxvsplath", "fxvsplatb", 268, 269, _VG), ("fxvcmph", "fxvcmpb", 300, 301, _V),
        ("fxvshh", "fxvshb", 316, 317, _VVS),
        ("fxvsubhm", "fxvsubbm", 332, 333, _VVV), ("fxvsubhfs", "fxvsubbfs", 348, 349, _VVV),
        ("fxvaddactachm", "fxvaddactacbm", 364, 365, _VVV),
        ("fxvaddactachf", "fxvaddactacbf", 380, 381, _VVV),
        ("fxvaddachm", "fxvaddacbm", 396, 397, _VVV),
        ("fxvaddachfs", "fxvaddacbfs", 412, 413, _VVV),
        ("fxvaddtach", "fxvaddtacb", 428, 429, _VVV),
        ("fxvaddhm", "fxvaddbm", 460, 461, _VVV), ("fxvaddhfs", "fxvaddbfs", 476, 477, _VVV)):
    VECTOR_OPS += [(_h, _xh, _shape, 1), (_b, _xb, _shape, 1)]
VECTOR_OPS += [
    ("fxvinx", 236, _VGG, 20), ("fxvoutx", 252, _VGG, 20),
    ("fxvpckbu", 239, _VVV, 1), ("fxvpckbl", 255, _VVV, 1),
    ("fxvupckbr", 271, _VVV, 1), ("fxvupckbl", 287, _VVV, 1),
    ("fxvsel", 319, _VVV, 1),
    ("fxvlax", 492, _VGG, 2), ("fxvstax", 508, _VGG, 1),
]
for _mn, _xo, _shape, _cyc in VECTOR_OPS:
    _ins(_mn, "FXV", 4, _xo, "VXO", _shape + _C, cycles=_cyc, group="vector")

INSTRUCTIONS: tuple[Instruction, ...] = tuple(_T)
BY_MNEMONIC: dict[str, Instruction] = {i.mnemonic: i for i in INSTRUCTIONS}
assert len(BY_MNEMONIC) == len(INSTRUCTIONS), "duplicate mnemonic in the table"

# Older fxv spellings -> current mnemonic (assembler input only).
VECTOR_SPELLINGS = {
    "fxvmtac": "fxvmtach", "fxvmtacf": "fxvmtachf", "fxvmah": "fxvmahm",
    "fxvaddactacm": "fxvaddactachm", "fxvaddactacf": "fxvaddactachf",
    "fxvaddtachm": "fxvaddtach", "fxvaddtacbm": "fxvaddtacb",
}

# --------------------------------------------------------------------------
# Extended mnemonics


@dataclass(frozen=True)
class Alias:
    """`mnemonic ops...` == `base` with each base field set by an expression.

    `fields` maps each base operand field to an expression over the alias's
    operand names (Python syntax, integers only, linear in each name).
    `disasm` marks the aliases objdump prints in place of the base form."""
    mnemonic: str
    base: str
    operands: tuple[Operand, ...]
    fields: tuple[tuple[str, str], ...]
    disasm: bool = True
    paren: int | None = None

    @property
    def instruction(self) -> Instruction:
        return BY_MNEMONIC[self.base]

    def compiled(self) -> tuple[tuple[str, Callable[..., int]], ...]:
        return _compile(self)


_COMPILED: dict[Alias, tuple] = {}


def _compile(a: Alias):
    got = _COMPILED.get(a)
    if got is None:
        # Defaults let the disassembler evaluate with some operands still unknown.
        names = ",".join(f"{o.name}=0" for o in a.operands)
        got = tuple((f, eval(f"lambda {names}: {e}", {})) for f, e in a.fields)  # noqa: S307 table-only
        _COMPILED[a] = got
    return got


_A: list[Alias] = []


def _alias(mn, base, ops, fields, disasm=True, paren=None, rc_variant=False):
    """ops: 'rt:RT,ra:RA0' (name:shorthand[?]); fields: 'RT=rt,RA=ra'."""
    operands = []
    for s in filter(None, ops.split(",")):
        name, sh = s.split(":")
        opt = sh.endswith("?")
        sh = sh.rstrip("?")
        kind = {"LIR": BDREL, "LIA": BDABS, "BDR": BDREL, "BDA": BDABS, "N": UIMM}.get(sh) or _KIND_OF[sh]
        fld = {"LIR": "LI", "LIA": "LI", "BDR": "BD", "BDA": "BD", "N": "SH"}.get(sh) or _FIELD_OF.get(sh, sh)
        operands.append(Operand(name, kind, opt, 0, fld))
    fl = tuple(tuple(x.split("=", 1)) for x in filter(None, fields.split(";")))
    _A.append(Alias(mn, base, tuple(operands), fl, disasm, paren))
    if rc_variant:
        _A.append(Alias(mn + ".", base + ".", tuple(operands), fl, disasm, paren))


# Immediates and moves. Order matters for the disassembler: first match wins.
_alias("nop", "ori", "", "RA=0;RT=0;D=0")
_alias("li", "addi", "rt:RT,v:SI", "RT=rt;RA=0;D=v")
_alias("lis", "addis", "rt:RT,v:SUI", "RT=rt;RA=0;D=v")
_alias("la", "addi", "rt:RT,d:SI,ra:RA0", "RT=rt;RA=ra;D=d", disasm=False, paren=2)
_alias("subi", "addi", "rt:RT,ra:RA0,v:SI", "RT=rt;RA=ra;D=-v", disasm=False)
_alias("subis", "addis", "rt:RT,ra:RA0,v:SI", "RT=rt;RA=ra;D=-v", disasm=False)
_alias("subic", "addic", "rt:RT,ra:RA,v:SI", "RT=rt;RA=ra;D=-v", disasm=False)
_alias("subic.", "addic.", "rt:RT,ra:RA,v:SI", "RT=rt;RA=ra;D=-v", disasm=False)
_alias("mr", "or", "ra:RA,rs:RS", "RA=ra;RT=rs;RB=rs", rc_variant=True)
_alias("not", "nor", "ra:RA,rs:RS", "RA=ra;RT=rs;RB=rs", rc_variant=True)
for _o in ("", "o"):
    for _r in ("", "."):
        _alias("sub" + _o + _r, "subf" + _o + _r, "rt:RT,ra:RA,rb:RB", "RT=rt;RA=rb;RB=ra", disasm=False)
_alias("subc", "subfc", "rt:RT,ra:RA,rb:RB", "RT=rt;RA=rb;RB=ra", disasm=False, rc_variant=True)

# Rotates and shifts (objdump prints rotlwi, slwi, srwi, clrlwi, rotlw).
_alias("rotlwi", "rlwinm", "ra:RA,rs:RS,n:N", "RA=ra;RT=rs;SH=n;MB=0;ME=31", rc_variant=True)
_alias("slwi", "rlwinm", "ra:RA,rs:RS,n:N", "RA=ra;RT=rs;SH=n;MB=0;ME=31-n", rc_variant=True)
_alias("srwi", "rlwinm", "ra:RA,rs:RS,n:N", "RA=ra;RT=rs;SH=32-n;MB=n;ME=31", rc_variant=True)
_alias("clrlwi", "rlwinm", "ra:RA,rs:RS,n:N", "RA=ra;RT=rs;SH=0;MB=n;ME=31", rc_variant=True)
_alias("rotrwi", "rlwinm", "ra:RA,rs:RS,n:N", "RA=ra;RT=rs;SH=32-n;MB=0;ME=31", disasm=False,
       rc_variant=True)
_alias("clrrwi", "rlwinm", "ra:RA,rs:RS,n:N", "RA=ra;RT=rs;SH=0;MB=0;ME=31-n", rc_variant=True)
_alias("extlwi", "rlwinm", "ra:RA,rs:RS,n:N,b:N", "RA=ra;RT=rs;SH=b;MB=0;ME=n-1", disasm=False,
       rc_variant=True)
_alias("extrwi", "rlwinm", "ra:RA,rs:RS,n:N,b:N", "RA=ra;RT=rs;SH=b+n;MB=32-n;ME=31", disasm=False,
       rc_variant=True)
_alias("clrlslwi", "rlwinm", "ra:RA,rs:RS,b:N,n:N", "RA=ra;RT=rs;SH=n;MB=b-n;ME=31-n", disasm=False,
       rc_variant=True)
_alias("inslwi", "rlwimi", "ra:RA,rs:RS,n:N,b:N", "RA=ra;RT=rs;SH=32-b;MB=b;ME=b+n-1", disasm=False,
       rc_variant=True)
_alias("insrwi", "rlwimi", "ra:RA,rs:RS,n:N,b:N", "RA=ra;RT=rs;SH=32-b-n;MB=b;ME=b+n-1",
       disasm=False, rc_variant=True)
_alias("rotlw", "rlwnm", "ra:RA,rs:RS,rb:RB", "RA=ra;RT=rs;RB=rb;MB=0;ME=31", rc_variant=True)

# Compares: optional CR field first.
_alias("cmpwi", "cmpi", "bf:BF?,ra:RA,v:SI", "BF=bf;L=0;RA=ra;D=v")
_alias("cmpw", "cmp", "bf:BF?,ra:RA,rb:RB", "BF=bf;L=0;RA=ra;RB=rb")
_alias("cmplwi", "cmpli", "bf:BF?,ra:RA,v:UI", "BF=bf;L=0;RA=ra;D=v")
_alias("cmplw", "cmpl", "bf:BF?,ra:RA,rb:RB", "BF=bf;L=0;RA=ra;RB=rb")

# Condition register logic.
_alias("crset", "creqv", "bt:BT", "BT=bt;BA=bt;BB=bt")
_alias("crclr", "crxor", "bt:BT", "BT=bt;BA=bt;BB=bt")
_alias("crmove", "cror", "bt:BT,ba:BA", "BT=bt;BA=ba;BB=ba")
_alias("crnot", "crnor", "bt:BT,ba:BA", "BT=bt;BA=ba;BB=ba")
_alias("mtcr", "mtcrf", "rs:RS", "FXM=255;RT=rs")

# Traps. TO bits: 16 lt, 8 gt, 4 eq, 2 llt, 1 lgt.
_alias("trap", "tw", "", "TO=31;RA=0;RB=0")
TRAP_CONDITIONS = (("lt", 16), ("le", 20), ("eq", 4), ("ge", 12), ("gt", 8), ("nl", 12),
                   ("ne", 24), ("ng", 20), ("llt", 2), ("lle", 6), ("lge", 5), ("lgt", 1),
                   ("lnl", 5), ("lng", 6), ("u", 31))
for _c, _to in TRAP_CONDITIONS:
    _alias("tw" + _c, "tw", "ra:RA,rb:RB", f"TO={_to};RA=ra;RB=rb")
    _alias("tw" + _c + "i", "twi", "ra:RA,v:SI", f"TO={_to};RA=ra;D=v")

# SPR moves. Numbers from the Power ISA 2.06 (Book III-E) and the nux RTL
# (github.com/electronicvisions/nux, src/rtl: TBL/TBU 284/285).
SPR_NAMES = (("xer", 1), ("lr", 8), ("ctr", 9), ("dec", 22), ("srr0", 26), ("srr1", 27),
             ("csrr0", 58), ("csrr1", 59), ("pvr", 287))
for _n, _v in SPR_NAMES:
    _alias("mf" + _n, "mfspr", "rt:RT", f"RT=rt;SPR={_v}")
    if _n != "pvr":
        _alias("mt" + _n, "mtspr", "rs:RS", f"SPR={_v};RT=rs")
# SPRG0-3 (272-275): objdump prints "mfsprg rT,n" / "mtsprg n,rS".
_alias("mfsprg", "mfspr", "rt:RT,n:SPRGN", "RT=rt;SPR=272+n")
_alias("mtsprg", "mtspr", "n:SPRGN,rs:RS", "SPR=272+n;RT=rs")
for _k in range(4):
    _alias(f"mfsprg{_k}", "mfspr", "rt:RT", f"RT=rt;SPR={272 + _k}", disasm=False)
    _alias(f"mtsprg{_k}", "mtspr", "rs:RS", f"SPR={272 + _k};RT=rs", disasm=False)
# Standard time-base reads (objdump prints these names for mfspr 268/269).
_alias("mftb", "mfspr", "rt:RT", "RT=rt;SPR=268")
_alias("mftbu", "mfspr", "rt:RT", "RT=rt;SPR=269")
# Time base writes (284/285 are the nux TBL/TBU numbers); objdump names them
# only for mtspr.
_alias("mttbl", "mtspr", "rs:RS", "SPR=284;RT=rs")
_alias("mttbu", "mtspr", "rs:RS", "SPR=285;RT=rs")

# BO encodings (Power ISA 2.06): hint bits "at" are 11 likely (+), 10 unlikely (-).
# Conditional on CR bit: BO = 0b001at (false) / 0b011at (true);
# decrement CTR:        BO = 0b1a00t (nz) / 0b1a01t (z), with CR: 0b0000z etc.
_BO_HINTS = (("", 0), ("+", 3), ("-", 2))
_CR_CONDS = (("lt", 0, True), ("le", 1, False), ("eq", 2, True), ("ge", 0, False),
             ("gt", 1, True), ("nl", 0, False), ("ne", 2, False), ("ng", 1, False),
             ("so", 3, True), ("ns", 3, False), ("un", 3, True), ("nu", 3, False))
_BRANCH_KINDS = (  # suffix, base, target shorthand
    ("", "bc", "BDR"), ("a", "bca", "BDA"), ("l", "bcl", "BDR"), ("la", "bcla", "BDA"),
    ("lr", "bclr", None), ("lrl", "bclrl", None), ("ctr", "bcctr", None), ("ctrl", "bcctrl", None))
for _hn, _at in _BO_HINTS:
    for _c, _bit, _true in _CR_CONDS:
        # at=01 is reserved in ISA 2.06 but is the old "y" hint bit; objdump
        # prints it without a suffix, so it is a disassembly-only spelling.
        for _at_x in ((_at, 1) if _at == 0 else (_at,)):
            _bo = (0b01100 if _true else 0b00100) | _at_x
            for _sfx, _base, _tgt in _BRANCH_KINDS:
                _ops_s = "cr:BF?" + (f",t:{_tgt}" if _tgt else "")
                _fl = f"BO={_bo};BI=4*cr+{_bit}" + (";BD=t" if _tgt else ";BH=0")
                _alias("b" + _c + _sfx + _hn, _base, _ops_s, _fl,
                       disasm=_c not in ("un", "nu"))
    # bt/bf: explicit CR bit operand.
    for _tf, _bo0 in (("t", 0b01100), ("f", 0b00100)):
        for _sfx, _base, _tgt in _BRANCH_KINDS:
            _ops_s = "bi:BI" + (f",t:{_tgt}" if _tgt else "")
            _fl = f"BO={_bo0 | _at};BI=bi" + (";BD=t" if _tgt else ";BH=0")
            _alias("b" + _tf + _sfx + _hn, _base, _ops_s, _fl)
    # CTR decrement forms; "at" bits sit at BO[1] and BO[4] here.
    _at2 = {0: 0, 3: 0b01001, 2: 0b01000}[_at]
    for _dz, _bo0 in (("dnz", 0b10000), ("dz", 0b10010)):
        for _sfx, _base, _tgt in _BRANCH_KINDS:
            if _base.startswith("bcctr"):
                continue  # decrementing bcctr is invalid
            _ops_s = f"t:{_tgt}" if _tgt else ""
            _fl = f"BO={_bo0 | _at2};BI=0" + (";BD=t" if _tgt else ";BH=0")
            _alias("b" + _dz + _sfx + _hn, _base, _ops_s, _fl)
    # CTR decrement and CR bit: BO = 0b0000z / 0b0001z (nz/z, false), +8 for true; 'y' hint
    # bit only (BO[4]) -- no "at" pair exists for these in ISA 2.06.
    for _dz, _bo0 in (("dnzf", 0b00000), ("dzf", 0b00010), ("dnzt", 0b01000), ("dzt", 0b01010)):
        if _at:
            continue
        for _sfx, _base, _tgt in _BRANCH_KINDS:
            if _base.startswith("bcctr"):
                continue
            _ops_s = "bi:BI" + (f",t:{_tgt}" if _tgt else "")
            _fl = f"BO={_bo0};BI=bi" + (";BD=t" if _tgt else ";BH=0")
            _alias("b" + _dz + _sfx, _base, _ops_s, _fl)


def branch_hint(bo: int) -> str:
    """'+'/'-' suffix objdump prints for a raw bc* whose BO carries an "at" hint."""
    if bo & 0b10100 == 0b00100:        # 0b0c1at: conditional on a CR bit
        at = bo & 0b11
    elif bo & 0b10100 == 0b10000:      # 0b1a0zt: decrement CTR only
        at = ((bo >> 2) & 0b10) | (bo & 1)
    else:
        return ""
    return {0b11: "+", 0b10: "-"}.get(at, "")


# Unconditional returns and jumps.
_alias("blr", "bclr", "", "BO=20;BI=0;BH=0")
_alias("blrl", "bclrl", "", "BO=20;BI=0;BH=0")
_alias("bctr", "bcctr", "", "BO=20;BI=0;BH=0")
_alias("bctrl", "bcctrl", "", "BO=20;BI=0;BH=0")

ALIASES: tuple[Alias, ...] = tuple(_A)
ALIAS_BY_MNEMONIC: dict[str, Alias] = {}
for _a in ALIASES:
    ALIAS_BY_MNEMONIC.setdefault(_a.mnemonic, _a)  # first spelling wins (bnl/bge share BO)
# Aliases the disassembler may print, grouped by base mnemonic, in table order.
DISASM_ALIASES: dict[str, tuple[Alias, ...]] = {}
for _a in ALIASES:
    if _a.disasm:
        DISASM_ALIASES.setdefault(_a.base, ())
        DISASM_ALIASES[_a.base] += (_a,)

# Condition-register bit names usable in expressions (GNU as: lt gt eq so un).
CR_BIT_NAMES = {"lt": 0, "gt": 1, "eq": 2, "so": 3, "un": 3}


def lookup(mnemonic: str) -> Instruction | Alias | None:
    """Instruction or alias for an assembly mnemonic (aliases of spellings applied)."""
    m = mnemonic.lower()
    m = VECTOR_SPELLINGS.get(m, m)
    return BY_MNEMONIC.get(m) or ALIAS_BY_MNEMONIC.get(m)
