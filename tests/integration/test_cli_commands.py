"""The `bss-twin` command line (tools/cli.py): info and regdump against a served
twin, the serve command's failures, and the table-driven dispatch."""
from __future__ import annotations

import re
import sys
import textwrap

import numpy as np
import pytest

from tools import cli


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# --------------------------------------------------------------------------- info / regdump
def test_info_over_tcp(tcp_server, capsys):
    rc, out, err = run_cli(capsys, "info", tcp_server.url)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[:5] == [f"url       {tcp_server.url}", "profile   dls", "chip      HICANN-DLS prototype",
                         "serial    3", "version   1"]
    assert lines[5] == "link counters (chip side):"
    split = lines.index("reliable link layer (host side):")       # TCP opens the layer (docs/transports.md)
    counters = dict(re.fullmatch(r"  (\w+) +(\d+)", l).groups() for l in lines[6:split])
    assert list(counters) == ["frames", "crc_errors", "truncated", "oversized", "bad_version",
                              "wrong_direction", "sequence_gaps", "bytes_discarded", "word_errors", "programs",
                              "program_limits", "notices_dropped", "locks_broken", "resumes"]
    assert int(counters["frames"]) >= 1 and int(counters["programs"]) >= 1
    link = dict(re.fullmatch(r"  (\w+) +(\d+)", l).groups() for l in lines[split + 1:])
    assert {"retransmissions", "duplicates", "gaps"} <= set(link) and int(link["packets_sent"]) >= 2


def test_info_defaults_to_the_environment_url(monkeypatch, capsys):
    monkeypatch.setenv("BSS_CONNECTION", "twin:hicann?serial=17")
    rc, out, err = run_cli(capsys, "info")
    assert rc == 0, err
    assert "profile   hicann\n" in out and "serial    17\n" in out


def test_regdump_shows_what_another_client_wrote(shared_tcp_server, tcp_server, capsys):
    """A `--shared` server has one chip: values written over one connection are
    what regdump (another connection) prints, field by field.  By default each
    client has its own instance: regdump shows the reset values."""
    from host import connect

    values = np.random.default_rng(8).integers(0, 1 << 32, 8)     # every bit is a field on dls
    with connect(tcp_server.url) as conn:
        prog = conn.program()
        prog.write_words(conn.regmap.addresses("synapse", "weights")[:8], values)
        conn.run(prog)
    rc, out, err = run_cli(capsys, "regdump", tcp_server.url, "synapse")
    assert rc == 0, err
    assert out.splitlines()[0] == f"{0x60000:#010x}  synapse.weights[0, 0, 0]  0x00000000  " + " ".join(
        f"weight{j}=0 calib_amp{j}=0" for j in range(4))
    tcp_server = shared_tcp_server
    with connect(tcp_server.url) as conn:
        addrs = conn.regmap.addresses("synapse", "weights")[:8]
        prog = conn.program()
        prog.write_words(addrs, values)
        prog.done()
        conn.run(prog)
    rc, out, err = run_cli(capsys, "regdump", tcp_server.url, "synapse")
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 * 32 * 8                       # weights and labels: 32 rows x 8 quads
    for k, v in enumerate(values.tolist()):
        fields = " ".join(f"weight{j}={(v >> 8 * j) & 0x3F} calib_amp{j}={(v >> (8 * j + 6)) & 0x3}"
                          for j in range(4))
        assert lines[k] == f"{0x60000 + k:#010x}  synapse.weights[0, {k // 8}, {k % 8}]  {v:#010x}  {fields}"
    assert lines[256].startswith("0x00060100  synapse.labels[0, 0, 0]  0x")


def test_calibrate_over_tcp(tcp_server, capsys):
    """The calibration needs nothing but the wire: against a served twin it reports
    the chip and every quantity asked for."""
    rc, out, err = run_cli(capsys, "calibrate", tcp_server.url, "--no-cache", "--quiet", "--neurons", "0-3",
                           "--quantities", "leak,reset")
    assert rc == 0, err
    assert out.startswith("dls serial 3 (model version 1): 4 neurons")
    assert re.search(r"^leak .* 4/4 ", out, re.M) and re.search(r"^reset .* 4/4 ", out, re.M)


def test_regdump_of_every_block_skips_write_only_registers(capsys):
    rc, out, err = run_cli(capsys, "regdump", "twin:dls?serial=5")
    assert rc == 0, err
    lines = out.splitlines()
    assert not any("spike_counter_reset" in l or "correlation.reset_row" in l for l in lines)
    assert "0x000f0001  chip_id.serial  0x00000005  serial=5" in lines
    assert "0x00020000  ppu.control  0x00000000  inhibit_reset=0 force_clock_on=0 force_clock_off=0" in lines
    # One line per readable element: 4096 PPU words, 2 x 256 synapse words, ...
    assert sum(l.split()[1].startswith("ppu.memory[") for l in lines) == 4096
    assert len(set(l.split()[0] for l in lines)) == len(lines)          # no address twice
    for l in lines:
        assert re.fullmatch(r"0x[0-9a-f]{8}  [a-z0-9_]+\.[a-z0-9_]+(\[\d+(, \d+)*\])?  0x[0-9a-f]{8}  "
                            r"[a-z0-9_]+=\d+( [a-z0-9_]+=\d+)*", l), l


def test_regdump_unknown_block(capsys):
    from isa.regmap import register_map

    rc, out, err = run_cli(capsys, "regdump", "twin:dls", "nonsense")
    assert (rc, out) == (1, "")
    blocks = ", ".join(b.name for b in register_map("dls").blocks)
    assert err == f"bss-twin: error: dls has no block 'nonsense'; blocks: {blocks}\n"


def test_unreachable_url_is_one_line_not_a_traceback(capsys):
    rc, out, err = run_cli(capsys, "info", "tcp://127.0.0.1:1")
    assert rc == 1
    assert err.startswith("bss-twin: error: cannot connect to tcp://127.0.0.1:1: ") and err.count("\n") == 1


# --------------------------------------------------------------------------- serve
def test_serve_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["serve", "--chip", "dls"])            # neither --tcp nor --pty
    assert e.value.code == 2
    assert "one of the arguments --tcp --pty is required" in capsys.readouterr().err
    rc, _, err = run_cli(capsys, "serve", "--tcp", "host:port")
    assert (rc, err) == (1, "bss-twin: error: TCP address 'host:port': port 'port' is not a number ([HOST:]PORT)\n")
    rc, _, err = run_cli(capsys, "serve", "--pty", "--receive-timeout", "0")
    assert (rc, err) == (1, "bss-twin: error: --receive-timeout must be positive, not 0.0\n")
    rc, _, err = run_cli(capsys, "serve", "--pty", "--serial", str(1 << 32))
    assert (rc, err) == (1, f"bss-twin: error: serial {1 << 32} outside 0..2**32-1\n")
    rc, _, err = run_cli(capsys, "serve", "--tcp", "0", "--max-lock-seconds", "0")
    assert (rc, err) == (1, "bss-twin: error: --max-lock-seconds must be positive, not 0.0\n")


def test_serve_refuses_a_state_it_cannot_use(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "serve", "--tcp", "0", "--state", str(tmp_path / "missing"))
    assert (rc, err) == (1, f"bss-twin: error: --state {tmp_path / 'missing'}: not a directory\n")
    bad = tmp_path / "dls-serial-0.state"
    bad.write_bytes(b"BSS-TWIN-STATE\n\x00" + (1).to_bytes(4, "big") + bytes(40))
    rc, _, err = run_cli(capsys, "serve", "--tcp", "0", "--state", str(tmp_path))
    assert rc == 1 and str(bad) in err and "damaged or torn" in err


def test_help_texts_explain_commands_and_url_forms(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("serve", "info", "regdump"):
        assert re.search(rf"^    {name} +\S", out, re.M), name
    for form in ("twin:PROFILE?serial=N&seed=S", "tcp://HOST:PORT", "/dev/pts/N", "twin://PROFILE?serial=N"):
        assert form in out
    with pytest.raises(SystemExit):
        cli.main(["regdump", "--help"])
    out = capsys.readouterr().out
    assert "ADDRESS  block.register[index]  0xVALUE  field=value" in out and "tcp://HOST:PORT" in out


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([])
    assert e.value.code == 2


# --------------------------------------------------------------------------- the command table
@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("_bss_cli_test_")]:
        del sys.modules[name]


def test_forwarded_and_plugin_commands(plugin_dir, monkeypatch, capsys):
    (plugin_dir / "_bss_cli_test_fwd.py").write_text(textwrap.dedent("""
        CALLS = []
        def main(argv):
            CALLS.append(argv)
            return 3
    """))
    (plugin_dir / "_bss_cli_test_plug.py").write_text(textwrap.dedent("""
        def add_parsers(sub):
            p = sub.add_parser("hello", help="say hello")
            p.add_argument("--name", default="world")
            p.set_defaults(func=lambda args: print("hello", args.name) or 0)
    """))
    table = cli.COMMANDS + (cli.Forward("fwd", "_bss_cli_test_fwd", "forwarded command"),
                            cli.Parsers("_bss_cli_test_plug"),
                            cli.Forward("ghost", "_bss_cli_test_missing", "not written yet"),
                            cli.Parsers("_bss_cli_test_missing_too"))
    monkeypatch.setattr(cli, "COMMANDS", table)
    # Forwarded: arguments reach main(argv) untouched, --help included.
    assert cli.main(["fwd", "--help", "-x", "pos"]) == 3
    import _bss_cli_test_fwd
    assert _bss_cli_test_fwd.CALLS == [["--help", "-x", "pos"]]
    # Plugin parsers take part in normal parsing.
    assert cli.main(["hello", "--name", "chip"]) == 0
    assert capsys.readouterr().out == "hello chip\n"
    # Missing modules are left out of the command list.
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "fwd" in out and "hello" in out and "ghost" not in out


def test_a_plugin_that_fails_to_import_is_not_hidden(plugin_dir, monkeypatch):
    (plugin_dir / "_bss_cli_test_broken.py").write_text("import _bss_cli_test_no_such_dependency\n")
    monkeypatch.setattr(cli, "COMMANDS", cli.COMMANDS + (cli.Parsers("_bss_cli_test_broken"),))
    with pytest.raises(ModuleNotFoundError, match="_bss_cli_test_no_such_dependency"):
        cli.main(["info", "--help"])


@pytest.mark.parametrize("args, message", [
    (["--sources", "0"], "--sources 0 must be at least 1"),
    (["--duration", "-1"], "--duration -1 must be positive"),
    (["--duration", "0"], "--duration 0 must be positive"),
    (["--rate", "-5"], "--rate -5 must be zero or more"),
])
def test_demo_refuses_arguments_it_cannot_run_with(capsys, args, message):
    rc, out, err = run_cli(capsys, "demo", *args, "--png", "")
    assert rc == 2 and message in err and "Traceback" not in err


def test_regdump_with_a_block_for_a_url_says_to_give_the_url(capsys):
    rc, out, err = run_cli(capsys, "regdump", "neuron")
    assert rc == 1 and "'neuron' is a register block, not a connection URL" in err
    assert "bss-twin regdump twin:dls neuron" in err
