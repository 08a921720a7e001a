"""Benchmarks: figures and ratios against a baseline run side by side, never timed asserts.

Run as modules from the repository root (`python -m benchmarks.bench_vocab`; `make bench` runs
them all, then `python -m benchmarks.update_docs` copies their tables into docs/benchmarks.md).
They may import the fixtures and oracles they share with the tests, from tests.helpers.
"""
