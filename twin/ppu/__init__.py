"""PPU ("nux") execution over the `isa.ppu` table.

`interp.run(mem, state, ...)` runs a predecoded memory image (scalar ISA, fxv
vector unit, interrupts, register-bus exits) until `wait`, a fault or a cycle
budget, compiling hot code to machine code through `jit`; `reference.run` is the
plain-Python model the tests hold it against; `block.attach_ppus(chip)` puts
the PPUs on a chip's register bus.  Imported lazily: `import twin.ppu`
compiles nothing.
"""
__all__ = ["interp", "reference", "jit", "block"]
