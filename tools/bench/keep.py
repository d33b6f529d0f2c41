"""What keeping a chip costs: the lock, a resume after a broken connection, the saved state.

    .venv/bin/python -m tools.bench.keep                  # about 20 s
    .venv/bin/python -m tools.bench.keep --programs 200

Every figure is printed with its reference, measured in the same run on the same server:

  lock      a write+read program of a client holding the chip's lock, against the same
            program without the lock (a --shared server, one client)
  resume    the same program when the TCP connection under it breaks after it was sent
            (the answer lost with the socket): reconnect, RESUME, the answer sent again;
            against the program on a healthy connection
  state     one save of --state (read the kept registers while no program runs, encode,
            write, fsync, rename) for each profile; against one host program reading the
            same registers over the in-process link (what a save reads)
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np


def _program(conn, address: int, value: int):
    p = conn.program()
    p.write_words(np.array([address], np.uint64), np.array([value], np.uint32))
    ticket = p.read_words(np.array([address], np.uint64))
    p.check = lambda: int(ticket.values[0]) == value
    return p


def _median_ms(f, n: int) -> float:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        f(i)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def bench_lock(n: int) -> None:
    import host
    from isa.regmap import register_map
    from twin.chip import Chip
    from twin.server import TwinServer

    addr = register_map("dls").address("synapse", "weights")
    with TwinServer(Chip("dls", 3), shared=True, log=lambda line: None) as srv, host.connect(srv.url) as c:
        plain = _median_ms(lambda i: c.run(_program(c, addr, i)), n)
        with c.lock():
            locked = _median_ms(lambda i: c.run(_program(c, addr, i)), n)
        cycle = _median_ms(lambda i: c.lock().acquire().release(), n)
    print(f"lock     program {plain:.2f} ms without the lock, {locked:.2f} ms holding it "
          f"(ratio {locked / plain:.2f}); acquire+release {cycle:.2f} ms ({cycle / plain:.2f} programs)")


def bench_resume(n: int) -> None:
    import host
    from isa.regmap import register_map
    from twin.chip import Chip
    from twin.server import TwinServer

    addr = register_map("dls").address("synapse", "weights")
    with TwinServer(Chip("dls", 3), log=lambda line: None) as srv, host.connect(srv.url + "?resume=1") as c:
        plain = _median_ms(lambda i: c.run(_program(c, addr, i)), n)
        transport = c.transport

        def cut_and_run(i: int) -> None:
            original = transport.write

            def write_then_cut(data: bytes) -> None:
                original(data)
                transport.write = original
                transport.inner._sock.close()
            transport.write = write_then_cut
            p = _program(c, addr, 1000 + i)
            c.run(p)
            if not p.check():
                raise SystemExit(f"resume: program {i} answered wrong")
        resumed = _median_ms(cut_and_run, max(5, n // 10))
        resumes = transport.stats()["resumes"]
        p = c.program()
        t = p.read_words(np.array([register_map("dls").address("link", "programs")], np.uint64))
        c.run(p)
        ran = int(t.values[0])
    print(f"resume   program {plain:.2f} ms on a healthy connection, {resumed:.2f} ms with the connection "
          f"broken under it and resumed (ratio {resumed / plain:.1f}; {resumes} resumes, every answer right; the chip ran {ran} programs "
          f"before the one reading that, for {1 + n + max(5, n // 10)} sent (identification included): none twice)")


def bench_state(n: int) -> None:
    import host
    from twin import state
    from twin.session import ChipHost
    from twin.chip import Chip

    for profile in ("dls", "hicann", "hx"):
        chip = Chip(profile, 1)
        words = sum(c for _, _, c in state.kept_registers(chip))
        with tempfile.TemporaryDirectory() as d:
            ch = ChipHost(chip)
            store = state.StateStore(d, chip, ch.exclusive)
            save = _median_ms(lambda i: (chip.link_counters.__setitem__("programs", i + 1),
                                         chip.bus.write(chip.regmap.addresses("synapse", "weights")[:1],
                                                        np.array([i], np.uint32), np.array([0xF], np.uint8)),
                                         store.save_if_changed()), max(5, n // 10))
            size = store.path.stat().st_size
        with host.connect(f"twin:{profile}?serial=1") as c:
            rm = c.regmap
            addrs = np.concatenate([rm.addresses(b, r) for b, r, _ in state.kept_registers(chip)])

            def read_all(i: int) -> None:
                p = c.program()
                p.read_words(addrs)
                c.run(p)
            ref = _median_ms(read_all, max(5, n // 10))
        print(f"state    {profile:<6} {words} words, file {size / 1024:.0f} KiB: save {save:.1f} ms, one host "
              f"program reading the same registers {ref:.1f} ms (ratio {save / ref:.2f})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=100, help="programs per figure (default 100)")
    args = ap.parse_args(argv)
    bench_lock(args.programs)
    bench_resume(args.programs)
    bench_state(args.programs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
