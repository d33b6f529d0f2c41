"""Register maps of the chip generations, as data, and what is derived from them."""
from __future__ import annotations

from functools import cache

from ._blocks import CHIP_ID_BASE, EVENT_ADDRESSES, LABEL_ROW_SHIFT, LINK_BASE, LINK_COUNTERS
from ._model import Block, Field, Location, RangeTable, Register, RegisterMap

__all__ = ["Block", "Field", "Location", "RangeTable", "Register", "RegisterMap",
           "register_map", "to_markdown",
           # facts the other packages need: the identification and link blocks' addresses (the same on
           # every generation), the event-address space and where a label's address sits in it
           "CHIP_ID_BASE", "LINK_BASE", "LINK_COUNTERS", "EVENT_ADDRESSES", "LABEL_ROW_SHIFT"]


@cache
def register_map(profile: str) -> RegisterMap:
    """The register map of a chip profile (dls, hicann, hx)."""
    from isa.profiles import profile as lookup
    lookup(profile)  # clear error for unknown names
    from importlib import import_module
    return import_module(f"isa.regmap.{profile}").REGISTER_MAP


def to_markdown(rm: RegisterMap) -> str:
    """Reference documentation of a register map (docs/registers-<profile>.md)."""
    from isa.profiles import profile as lookup
    p = lookup(rm.profile)
    out = [f"# Register map: `{rm.profile}` ({p.chip})", "",
           "Generated from `isa/regmap/` by `bss-twin gen-docs`; do not edit by hand.", "",
           rm.doc, "",
           "Addresses count 32-bit words on the register bus. Access: rw read/write, "
           "ro read-only (writes are rejected), wo write-only (reads are rejected). "
           "Bits outside every field are reserved: writing them is rejected.", "",
           "| block | base | registers | description |", "|---|---|---|---|"]
    for b in rm.blocks:
        n = sum(max(r.count, 1) for r in b.registers)
        out.append(f"| [`{b.name}`](#{b.name}) | `{b.base:#010x}` | {n} | {b.doc} |")
    for b in rm.blocks:
        out += ["", f"## {b.name}", "", f"Base `{b.base:#010x}`. {b.doc}", ""]
        for r in b.registers:
            addr = b.base + r.offset
            span = (f"`{addr:#010x}`..`{addr + r.count - 1:#010x}` shape {r.shape}" if r.shape
                    else f"`{addr:#010x}`")
            out += [f"### {b.name}.{r.name}", "",
                    f"{span}, {r.access}, reset `{r.reset:#010x}`. {r.doc}", "",
                    "| bits | field | reset | legal | description |", "|---|---|---|---|---|"]
            for f in sorted(r.fields, key=lambda f: -f.lsb):
                bits = f"{f.lsb + f.width - 1}:{f.lsb}" if f.width > 1 else f"{f.lsb}"
                out.append(f"| {bits} | `{f.name}` | {f.reset} | 0..{f.limit} | {f.doc} |")
    return "\n".join(out) + "\n"
