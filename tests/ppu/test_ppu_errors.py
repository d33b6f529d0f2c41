"""Bad-input corpus: each tests/data/asm_errors/X.s has the exact diagnostics in X.err."""
from __future__ import annotations

from pathlib import Path

import pytest

from isa.ppu.asm import AsmError, assemble_file

CORPUS = Path(__file__).resolve().parents[1] / "data" / "asm_errors"
CASES = sorted(p.stem for p in CORPUS.glob("*.s"))


@pytest.mark.parametrize("name", CASES)
def test_diagnostics_exact(name, monkeypatch):
    monkeypatch.chdir(CORPUS)          # diagnostics name the file as given
    with pytest.raises(AsmError) as e:
        assemble_file(f"{name}.s")
    assert e.value.format() == (CORPUS / f"{name}.err").read_text()


def test_corpus_is_not_empty():
    assert len(CASES) >= 10
