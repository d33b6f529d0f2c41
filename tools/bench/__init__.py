"""Benchmarks: `python -m tools.bench.wire`."""
