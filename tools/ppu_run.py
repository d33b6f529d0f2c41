"""`bss-twin ppu-run`: run a PPU image or ELF on a twin through the host library.

Added to tools/cli.py's table as `Parsers("tools.ppu_run")`.  The image is
loaded over the wire into PPU 0 of an in-process twin (`twin:CHIP?serial=N`),
the core is released and the chip runs until the core sleeps (`wait`) or the
cycle limit passes.  Exit status: 0 when the core slept, 1 on a fault (the
message names the faulting address) or at the cycle limit.
"""
from __future__ import annotations

import argparse
import sys

PROG = "bss-twin ppu-run"


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "ppu-run", help="run a PPU program (flat image or ELF) on a twin until it sleeps",
        description="Load IMAGE (a flat memory image from address 0, or an ELF linked at 0) into "
                    "PPU 0 of an in-process twin over the wire, release the core and let the chip "
                    "run until the core executes `wait` or MAX_CYCLES PPU cycles pass. Prints the "
                    "cycle count at the `wait` and main's return code (the word at 0x2FFC, "
                    "firmware/crt0.s convention).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", metavar="IMAGE", help="flat image or ELF file")
    p.add_argument("--chip", default="dls", choices=("dls", "hx"), help="chip generation (default dls)")
    p.add_argument("--serial", type=_int, default=0, metavar="N", help="chip serial number (default 0)")
    p.add_argument("--max-cycles", type=_int, default=10_000_000, metavar="N",
                   help="stop a core that has not slept after N cycles (default 10000000)")
    p.add_argument("--regs", action="store_true", help="print r0-r31 as rN=0x%%08x lines")
    p.add_argument("--dump-mem", metavar="OUT", help="write the whole PPU memory to OUT")
    p.add_argument("--trace", action="store_true",
                   help="single-step through the debug registers and print every instruction")
    p.set_defaults(func=run)


def _looks_like_assembly(path: str) -> str:
    """Why the file looks like assembly text ("" if it does not): an .s/.S/.asm
    name, or UTF-8 text whose first statement is a directive, label or mnemonic."""
    if path.endswith((".s", ".S", ".asm")):
        return "its name ends in " + path[path.rfind("."):]
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
        text = head.decode("ascii")
    except (OSError, UnicodeDecodeError):
        return ""
    if "\0" in text or not text.strip():
        return ""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("#", "/*"))),
                 "")
    return f"it is text, starting {first[:30]!r}" if first else "it is text"


def run(args: argparse.Namespace) -> int:
    from host import PPU, PPUFault, PPUTimeout, connect

    if args.max_cycles <= 0:
        return _fail(f"--max-cycles must be positive, not {args.max_cycles}")
    source = _looks_like_assembly(args.image)
    if source:
        return _fail(f"{args.image} looks like assembly source ({source}), not an image: assemble it first, "
                     f"e.g. `bss-twin asm {args.image} -o program.bin`, then `bss-twin ppu-run program.bin`")
    with connect(f"twin:{args.chip}?serial={args.serial}") as conn:
        ppu = PPU(conn)
        try:
            ppu.load(args.image)
        except (OSError, ValueError) as exc:
            return _fail(str(exc))
        limit = args.max_cycles / ppu.clock_hz
        err = None
        try:
            if args.trace:
                ppu.halt()
                ppu.start()
                for step in ppu.step(args.max_cycles):
                    print(step.text())
                ppu.resume()
                state = ppu.status()
                ppu._check(state)
                if not state.sleeping:
                    raise PPUTimeout("")
            else:
                ppu.start()
                state = ppu.run_until_sleep(limit, poll_interval=min(limit, 10e-6))
        except PPUFault as exc:
            err = str(exc)
        except PPUTimeout as exc:
            ppu.halt()
            s = ppu.status()
            if "does not advance" in str(exc):
                err = f"{exc} (this twin does not run its PPUs: twin.chip.Chip must attach them)"
            else:
                err = (f"the core did not sleep within the cycle limit ({args.max_cycles} cycles; "
                       f"stopped at pc=0x{s.pc:08x} after {s.cycles} cycles): a runaway loop? "
                       "raise --max-cycles if it needs longer")
        if err is None:
            print(f"cycles {state.wait_cycles}")
            print(f"return code {ppu.return_code()}")
        if args.regs:
            for k, v in enumerate(ppu.registers()):
                print(f"r{k}=0x{v:08x}")
        if args.dump_mem:
            with open(args.dump_mem, "wb") as f:
                f.write(ppu.read_memory())
    if err is not None:
        return _fail(err)
    return 0


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1
