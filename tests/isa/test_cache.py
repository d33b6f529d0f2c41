"""The one cache-folder rule (isa/cache.py) that the PPU translator, the
firmware builder and the calibration cache share."""
import pathlib

import firmware
import host.calibration as calibration
from isa.cache import cache_folder, cache_root
from twin.ppu import jit


def test_the_environment_names_the_root_in_order(monkeypatch, tmp_path):
    monkeypatch.delenv("BSS_TWIN_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "bss-twin"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "bss-twin"
    monkeypatch.setenv("BSS_TWIN_CACHE_DIR", str(tmp_path / "own"))
    assert cache_root() == tmp_path / "own"


def test_every_user_of_the_cache_follows_the_rule(monkeypatch, tmp_path):
    monkeypatch.setenv("BSS_TWIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(jit, "_disk", None)
    assert calibration.cache_dir() == tmp_path / "calibration"
    assert firmware._cache_dir() == tmp_path / "firmware"
    assert jit._cache_dir() == tmp_path / "ppu-regions"
    assert (tmp_path / "firmware").is_dir() and (tmp_path / "ppu-regions").is_dir()


def test_an_unwritable_root_says_what_happens_instead(monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("BSS_TWIN_CACHE_DIR", str(blocker))
    assert cache_folder("firmware", "firmware is assembled each time") is None
    err = capsys.readouterr().err
    assert str(pathlib.Path(blocker) / "firmware") in err
    assert "firmware is assembled each time" in err and "BSS_TWIN_CACHE_DIR" in err
    monkeypatch.setattr(jit, "_disk", None)
    assert jit._cache_dir() is None
    assert "compiled again in every process" in capsys.readouterr().err
