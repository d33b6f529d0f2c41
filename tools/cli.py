"""The `bss-twin` command line.

Commands come from one table (`COMMANDS`).  An entry is either a command
implemented here (its own arguments and a `run(args) -> int`), a command that
hands its arguments to another module's `main(argv)`, or a module that adds its
own parsers through `add_parsers(subparsers)` (each parser sets `func`).  To add
a command, add an entry.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

PROG = "bss-twin"

URL_FORMS = """\
connection URLs:
  twin:PROFILE?serial=N&seed=S    a private in-process twin (PROFILE: dls, hicann, hx)
  tcp://HOST:PORT                 a twin server (`bss-twin serve --tcp`) or a board bridge
  /dev/pts/N, /dev/ttyUSB0        a serial line: the twin server's pty or a board
  serial:///dev/ttyUSB0?baud=B    the same, with a baud rate
  twin://PROFILE?serial=N         an in-process twin through pyserial's serial_for_url
  socket://, rfc2217://, ...      any other pyserial URL
  (none)                          $BSS_CONNECTION, else twin:dls
"""


# ============================================================================ the table
@dataclass(frozen=True)
class Builtin:
    """A command implemented in this module."""

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    epilog: str = ""


@dataclass(frozen=True)
class Forward:
    """A command whose arguments go unparsed to `module.main(argv)` (imported on use)."""

    name: str
    module: str
    help: str


@dataclass(frozen=True)
class Parsers:
    """A module that adds its own sub-parsers: `module.add_parsers(subparsers)`;
    each parser it adds sets `func(args) -> int` as a default."""

    module: str


def _module_exists(name: str) -> bool:
    """True when `name` can be imported; False only when the module itself is missing."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False  # a parent package is missing


# ============================================================================ serve
def _serve_arguments(p: argparse.ArgumentParser) -> None:
    from isa.profiles import PROFILES

    p.add_argument("--chip", default="dls", choices=sorted(PROFILES), metavar="PROFILE",
                   help=f"chip generation to model: {', '.join(PROFILES)} (default dls)")
    p.add_argument("--serial", type=_int, default=0, metavar="N",
                   help="chip serial number; seeds the chip's fixed-pattern noise (default 0)")
    p.add_argument("--seed", type=_int, default=0, metavar="S",
                   help="seed of the chip's temporal noise (default 0)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", metavar="[HOST:]PORT",
                       help="listen on a TCP port (host default 127.0.0.1; port 0 picks a free port)")
    where.add_argument("--pty", action="store_true",
                       help="serve on a new pseudo-terminal, like a board on a USB-serial line")
    p.add_argument("--receive-timeout", type=float, default=None, metavar="S",
                   help="seconds of silence after which a partial frame or a program without its "
                        "END frame is dropped and reported with a `timeout` notification (default 0.5)")
    p.add_argument("--shared", action="store_true",
                   help="TCP clients share one chip, taking turns, and see each other's state (default: each "
                        "client has its own instance of the chip: same serial, same fixed pattern)")
    p.add_argument("--token-file", metavar="PATH",
                   help="require every TCP client to send the token in PATH first (token=... in its URL or "
                        "$BSS_TWIN_TOKEN); needed to listen beyond loopback")
    p.add_argument("--max-clients", type=int, default=None, metavar="N",
                   help="TCP clients served at once; more are refused with an `error SERVER_FULL` "
                        "notice (default 32)")
    p.add_argument("--scope", metavar="[HOST:]PORT",
                   help="also serve a virtual oscilloscope on the chip's readout pad (SCPI on a raw TCP socket, "
                        "VISA resource TCPIP0::HOST::PORT::SOCKET; host default 127.0.0.1; needs --shared; "
                        "docs/instruments.md)")
    _limit_arguments(p)


def _limit_arguments(p: argparse.ArgumentParser) -> None:
    from twin import limits as L

    g = p.add_argument_group("limits of one program (a client may ask for less; docs/transports.md, Limits)")
    g.add_argument("--max-program-seconds", type=float, default=None, metavar="S",
                   help=f"wall time a program may hold the chip (default {L.DEFAULT_PROGRAM_SECONDS:g})")
    g.add_argument("--max-program-ticks", type=_int, default=None, metavar="N",
                   help=f"chip time a program's waits may advance, in FPGA ticks of 8 ns "
                        f"(default 2**{L.DEFAULT_PROGRAM_TICKS.bit_length() - 1}: 34.4 s)")
    g.add_argument("--max-output-words", type=_int, default=None, metavar="N",
                   help="response words a program may produce: read data, spikes, MADC samples, event "
                        f"losses (default 2**{L.DEFAULT_OUTPUT_WORDS.bit_length() - 1})")
    g.add_argument("--max-receive-seconds", type=float, default=None, metavar="S",
                   help="wall time from a program's first frame to its END frame; longer and it is dropped "
                        f"with `timeout PROGRAM_RECEIVE` (default {L.DEFAULT_RECEIVE_SECONDS:g})")
    g.add_argument("--receive-buffer-words", type=_int, default=None, metavar="N",
                   help="words of unfinished programs all clients together may hold; the program whose "
                        "frame does not fit is dropped with `error RECEIVE_BUFFER_FULL` "
                        f"(default 2**{L.DEFAULT_RECEIVE_BUFFER_WORDS.bit_length() - 1})")


def _limits(args: argparse.Namespace):
    """The server's Limits from the options (ValueError names a bad one)."""
    from twin.limits import Limits

    given = {"seconds": ("--max-program-seconds", args.max_program_seconds),
             "ticks": ("--max-program-ticks", args.max_program_ticks),
             "output_words": ("--max-output-words", args.max_output_words),
             "receive_seconds": ("--max-receive-seconds", args.max_receive_seconds),
             "receive_buffer_words": ("--receive-buffer-words", args.receive_buffer_words)}
    for name, (option, value) in given.items():
        if value is not None and not value > 0:
            raise ValueError(f"{option} must be positive, not {value}")
    return Limits().replace(**{name: value for name, (_, value) in given.items()})


def _serve(args: argparse.Namespace) -> int:
    from twin.chip import Chip
    from twin.server import DEFAULT_MAX_CLIENTS, DEFAULT_RECEIVE_TIMEOUT, PtyServer, TwinServer, parse_tcp_address

    rt = DEFAULT_RECEIVE_TIMEOUT if args.receive_timeout is None else args.receive_timeout
    if rt <= 0:
        return _fail(f"--receive-timeout must be positive, not {rt}")
    max_clients = DEFAULT_MAX_CLIENTS if args.max_clients is None else args.max_clients
    if max_clients < 1:
        return _fail(f"--max-clients must be at least 1, not {max_clients}")
    try:
        chip = Chip(args.chip, args.serial, args.seed)
        limits = _limits(args)
    except ValueError as exc:
        return _fail(str(exc))
    scope = None
    if args.pty:
        if args.scope:
            return _fail("--scope goes with --tcp (the scope watches the chip the TCP clients share)")
        server = PtyServer(chip, receive_timeout=rt, limits=limits)
    else:
        try:
            host, port = parse_tcp_address(args.tcp)
        except ValueError as exc:
            return _fail(str(exc))
        token = None
        if args.token_file:
            try:
                token = open(args.token_file, encoding="utf-8").read().strip()
            except OSError as exc:
                return _fail(f"--token-file: {exc}")
        try:
            server = TwinServer(chip, host=host, port=port, receive_timeout=rt, max_clients=max_clients,
                                shared=args.shared, token=token, limits=limits)
            scope = _scope(args, chip, token)
        except ValueError as exc:
            return _fail(str(exc))
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
            if scope is not None:
                scope.start()
        except OSError as exc:
            return _fail(f"cannot serve: {exc}")
        if args.pty:
            print(f"pty {server.address}", flush=True)
        else:
            print(f"listening on {server.url}", flush=True)
        if scope is not None:
            print(f"scope {scope.resource}", flush=True)
        print(f"{PROG}: serving a {chip.profile.name} twin, serial {chip.serial}; "
              "SIGINT or SIGTERM stops", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
        print(f"{PROG}: stopping", file=sys.stderr, flush=True)
        return 0
    finally:
        server.stop()
        if scope is not None:
            scope.stop()
        for s, h in previous.items():
            signal.signal(s, h)


def _scope(args: argparse.Namespace, chip, token):
    """The --scope server (not started), or None."""
    if not args.scope:
        return None
    if not args.shared:
        raise ValueError("--scope needs --shared: the scope watches one chip's readout pad, and without "
                         "--shared every client has a chip of its own")
    from twin.scope import ScopeServer
    from twin.server import parse_tcp_address

    host, port = parse_tcp_address(args.scope)
    return ScopeServer(chip, host=host, port=port, token=token,
                       log=lambda text: print(f"{PROG}: {text}", file=sys.stderr, flush=True))


# ============================================================================ info / regdump
def _url_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", nargs="?", default=None, metavar="URL",
                   help="chip to talk to (default: $BSS_CONNECTION, else twin:dls); forms below")


def _info_arguments(p: argparse.ArgumentParser) -> None:
    _url_argument(p)


def _info(args: argparse.Namespace) -> int:
    import numpy as np

    from host import connect

    with connect(args.url) as conn:
        block = conn.regmap.block("link")
        regs = [r for r in block.registers if r.access != "wo"]
        prog = conn.program()
        ticket = prog.read_words(np.array([block.base + r.offset for r in regs], dtype=np.uint64))
        conn.run(prog)
        p = conn.profile
        lines = [f"url       {conn.url}",
                 f"profile   {p.name}",
                 f"chip      {p.chip}",
                 f"serial    {conn.serial}",
                 f"version   {conn.version}",
                 "link counters (chip side):"]
        width = max(len(r.name) for r in regs)
        lines += [f"  {r.name:<{width}}  {int(v)}" for r, v in zip(regs, ticket.values)]
        stats = getattr(conn.transport, "stats", None)
        if stats is None or not conn.transport.negotiated:
            lines.append("reliable link layer: off (plain frames)" if stats is not None else
                         "reliable link layer: not used on this link")
        else:
            counters = stats()
            width = max(map(len, counters))
            lines.append("reliable link layer (host side):")
            lines += [f"  {k:<{width}}  {v}" for k, v in counters.items()]
        print("\n".join(lines))
    return 0


def _regdump_arguments(p: argparse.ArgumentParser) -> None:
    _url_argument(p)
    p.add_argument("block", nargs="?", default=None, metavar="BLOCK",
                   help="register block to dump (default: every block); names are listed on error")


def _regdump(args: argparse.Namespace) -> int:
    import numpy as np

    from host import ChipError, connect
    from isa.profiles import PROFILES
    from isa.regmap import register_map

    blocks_anywhere = {b for name in PROFILES for b in register_map(name).by_name}
    if args.block is None and args.url in blocks_anywhere:
        return _fail(f"{args.url!r} is a register block, not a connection URL: give the URL first, e.g. "
                     f"`bss-twin regdump twin:dls {args.url}` (or set $BSS_CONNECTION)")
    with connect(args.url) as conn:
        rm = conn.regmap
        try:
            blocks = [rm.block(args.block)] if args.block else list(rm.blocks)
        except KeyError as exc:
            return _fail(exc.args[0])
        prog = conn.program()
        reads = []   # (block, register, addresses, ticket): one ticket per register
        for b in blocks:
            for r in b.registers:
                if r.access == "wo":
                    continue
                addr = np.arange(b.base + r.offset, b.base + r.offset + max(r.count, 1), dtype=np.uint64)
                reads.append((b, r, addr, prog.read_words(addr)))
        rejected = {}
        try:
            conn.run(prog)
        except ChipError as exc:
            rejected = {rw.index: rw.reason for rw in exc.rejected}
        out = sys.stdout
        from isa.regmap import Location

        for b, r, addr, ticket in reads:
            names = [str(Location(b, r, i)) for i in range(len(addr))] if r.shape else [f"{b.name}.{r.name}"]
            try:
                values = ticket.values
            except ChipError:
                lines = [f"{int(a):#010x}  {n}  <read rejected: "
                         f"{_reason_text(rejected.get(ticket.first_word + i))}>"
                         for i, (a, n) in enumerate(zip(addr, names))]
            else:
                lines = [f"{int(a):#010x}  {n}  {int(v):#010x}  "
                         + " ".join(f"{f.name}={f.extract(int(v))}" for f in r.fields)
                         for a, n, v in zip(addr, names, values)]
            out.write("\n".join(lines) + "\n")
        out.flush()
    if rejected:
        print(f"{PROG}: {len(rejected)} read(s) rejected by the chip", file=sys.stderr)
        return 1
    return 0


def _reason_text(reason) -> str:
    return "no reason given" if reason is None else f"{reason.text} ({reason.name})"


# ============================================================================ table
COMMANDS: tuple[Builtin | Forward | Parsers, ...] = (
    Builtin("serve", "serve a twin chip over TCP or a pseudo-terminal",
            "Serve one twin chip to clients over TCP (one chip shared by all clients, their "
            "programs run one at a time) or over a pseudo-terminal (behaves like a board on a "
            "USB-serial line). Prints the address on stdout ('listening on tcp://HOST:PORT' or "
            "'pty /dev/pts/N'), then serves until SIGINT or SIGTERM. Faults and notices are "
            "logged to stderr, one line each.",
            _serve_arguments, _serve,
            epilog="clients connect with tcp://HOST:PORT or the pty path; see docs/transports.md"),
    Builtin("info", "identify a chip and show its link counters",
            "Identify the chip behind URL (profile, chip name, serial, model version) and show "
            "the chip-side link counters of the `link` block.",
            _info_arguments, _info, epilog=URL_FORMS),
    Builtin("regdump", "print the registers of a chip",
            "Read every readable register of BLOCK (or of all blocks) in one program and print "
            "one line per register element: ADDRESS  block.register[index]  0xVALUE  field=value ...",
            _regdump_arguments, _regdump, epilog=URL_FORMS),
    Forward("gen-docs", "tools.gen_docs", "generate the register documentation (docs/registers-*.md)"),
    Parsers("tools.ppu_cli"),           # asm, disasm
    Parsers("tools.ppu_run"),           # ppu-run
    Forward("demo", "tools.demo", "run a first experiment on a chip (default: the in-process twin)"),
    Forward("calibrate", "tools.calibrate", "calibrate a chip's neurons to targets and report before/after"),
)


def build_parser(commands: Sequence[Builtin | Forward | Parsers] | None = None) -> argparse.ArgumentParser:
    """The argument parser of the commands in `commands` (default: COMMANDS)."""
    commands = COMMANDS if commands is None else commands
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A register-level digital twin of the BrainScaleS neuromorphic chips: "
                    "serve twins, inspect chips, build documentation and firmware.",
        epilog=URL_FORMS + "\n`bss-twin COMMAND --help` explains each command.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in commands:
        if isinstance(cmd, Builtin):
            p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description, epilog=cmd.epilog,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
            cmd.add_arguments(p)
            p.set_defaults(func=cmd.run)
        elif isinstance(cmd, Forward):
            if not _module_exists(cmd.module):
                continue
            p = sub.add_parser(cmd.name, help=cmd.help, add_help=False,
                               description=f"{cmd.help} (arguments are handled by {cmd.module})")
            p.add_argument("argv", nargs=argparse.REMAINDER)
            p.set_defaults(func=_forwarder(cmd))
        elif isinstance(cmd, Parsers):
            if not _module_exists(cmd.module):
                continue
            importlib.import_module(cmd.module).add_parsers(sub)
        else:  # pragma: no cover - table error
            raise TypeError(f"unknown command entry {cmd!r}")
    return parser


def _forwarder(cmd: Forward) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        rc = importlib.import_module(cmd.module).main(list(args.argv))
        return 0 if rc is None else int(rc)
    return run


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Forwarded commands get their arguments untouched (argparse would eat
    # options such as --help that belong to the target module).
    if argv:
        for cmd in COMMANDS:
            if isinstance(cmd, Forward) and cmd.name == argv[0] and _module_exists(cmd.module):
                rc = importlib.import_module(cmd.module).main(argv[1:])
                return 0 if rc is None else int(rc)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:          # e.g. `bss-twin regdump | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if isinstance(exc, _expected_errors()):
            return _fail(str(exc))
        raise


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Errors reported as one line instead of a traceback."""
    errors: tuple[type[BaseException], ...] = (ValueError, OSError)
    if "host" in sys.modules:
        errors += (sys.modules["host"].BssError,)
    return errors


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def _int(text: str) -> int:
    return int(text, 0)


if __name__ == "__main__":
    sys.exit(main())
