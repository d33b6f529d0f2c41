import sys
from pathlib import Path

# Reuse the GNU-oracle helpers of tests/ppu (_ppu_gnu).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ppu"))

import pytest


@pytest.fixture
def ppu_chips(monkeypatch):
    """Chips whose advance() clocks their PPUs.

    Until twin.chip.Chip does this itself (it will call twin.ppu.block.attach_ppus
    in __init__, block.advance after each analog step and block.reset on reset),
    wrap those three methods for the test; once Chip has a `ppus` attribute the
    fixture changes nothing."""
    from twin import chip as chip_mod
    from twin.ppu.block import attach_ppus

    Chip = chip_mod.Chip
    if hasattr(Chip("dls"), "ppus"):
        return
    init, advance, reset = Chip.__init__, Chip.advance, Chip.reset

    def new_init(self, *a, **kw):
        init(self, *a, **kw)
        self.ppus = attach_ppus(self)

    def new_advance(self, until, in_times, in_labels):
        start = self.now
        act = advance(self, until, in_times, in_labels)
        for p in self.ppus:
            p.advance(start, until)
        return act

    def new_reset(self):
        reset(self)
        for p in self.ppus:
            p.reset()

    monkeypatch.setattr(Chip, "__init__", new_init)
    monkeypatch.setattr(Chip, "advance", new_advance)
    monkeypatch.setattr(Chip, "reset", new_reset)
