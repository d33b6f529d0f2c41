"""`bss-twin calibrate`: calibrate the neurons of a chip and report.

Per neuron, over the wire (host.calibration; docs/calibration.md describes the
methods): leak, reset and threshold potentials, the membrane and both
synaptic time constants, and the PSP height of a full-weight synapse, each to
its target.  Prints, per quantity, the mean and the neuron-to-neuron spread
with the nominal cells (the documented transfer functions, uncalibrated) and
after calibration.  Results are cached per chip, targets, neurons and
quantities in $BSS_TWIN_CACHE_DIR/calibration (default
~/.cache/bss-twin/calibration); a cached result is applied to the chip
instead of calibrating again.
"""
from __future__ import annotations

import argparse
import sys
import warnings

HELP = __doc__

TARGETS_HELP = """\
targets (--targets NAME=VALUE,...; hardware units unless --bio):
  leak, reset, threshold      potentials: 0.4, 400mV, or ADC codes 85cadc / 341madc
  tau_mem, tau_syn_exc,
  tau_syn_inh                 time constants: 10us, 1e-5, 10000ns
  psp_exc, psp_inh            PSP height of one full-weight synapse at driver gain 8 (V)
defaults: leak 0.4 V, reset 0.3 V, threshold 0.6 V, tau_mem 10 ms and tau_syn 5 ms
biological (10 / 5 us on dls and hx, 1 / 0.5 us on hicann), PSPs 50 mV (100 mV hicann)
"""


def _neurons(text: str) -> list[int]:
    """argparse type of --neurons: "0-63", "0,5,9" or a mix."""
    out = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            a, sep, b = part.partition("-")
            out.extend(range(int(a), int(b) + 1) if sep else [int(a)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"neurons as ranges and numbers (0-63,100), not {text!r}") from None
    if not out:
        raise argparse.ArgumentTypeError("at least one neuron")
    return out


def build_parser() -> argparse.ArgumentParser:
    from host.calibration_fit import QUANTITIES

    ap = argparse.ArgumentParser(prog="bss-twin calibrate", description=HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=TARGETS_HELP)
    ap.add_argument("url", nargs="?", default=None,
                    help="chip to calibrate (default: $BSS_CONNECTION, else the in-process twin twin:dls)")
    ap.add_argument("--targets", default="", metavar="NAME=VALUE,...",
                    help="targets that differ from the defaults (below)")
    ap.add_argument("--bio", action="store_true", help="time constants in --targets are biological seconds")
    ap.add_argument("--neurons", type=_neurons, default=None, metavar="LIST",
                    help="neurons to calibrate, e.g. 0-63 (default: all)")
    ap.add_argument("--quantities", default=",".join(QUANTITIES), metavar="NAME,...",
                    help=f"quantities to calibrate (default: all: {', '.join(QUANTITIES)})")
    ap.add_argument("--png", default="", metavar="PATH", help="write histograms before/after to PATH")
    ap.add_argument("--save", default="", metavar="PATH", help="save the result (.npz; Calibration.load reads it)")
    ap.add_argument("--no-cache", action="store_true", help="calibrate even if a cached result exists, store none")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def main(argv=None) -> int:
    import host
    from host.calibration import Targets, calibrate
    from host.calibration_fit import QUANTITIES

    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    quantities = [q.strip() for q in args.quantities.split(",") if q.strip()]
    unknown = [q for q in quantities if q not in QUANTITIES]
    if unknown or not quantities:
        print(f"bss-twin calibrate: unknown quantities {', '.join(unknown) or '(none given)'}; "
              f"choose from {', '.join(QUANTITIES)}", file=sys.stderr)
        return 2
    with host.connect(args.url) as conn:
        try:
            targets = Targets.parse(args.targets, conn.profile, biological=args.bio)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                cal = calibrate(conn, targets, neurons=args.neurons, quantities=quantities,
                                cache=not args.no_cache, progress=not args.quiet)
        except ValueError as exc:
            print(f"bss-twin calibrate: {exc}", file=sys.stderr)
            return 2
    print(cal.report())
    for w in caught:
        print(f"note: {w.message}", file=sys.stderr)
    if args.png:
        cal.plot(args.png)
        print(f"wrote {args.png}")
    if args.save:
        cal.save(args.save)
        print(f"saved {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
