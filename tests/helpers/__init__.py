"""Helpers shared by the tests (and by the benchmarks): fixtures, tiny models, oracles.

Test files import from here, never from one another.
"""
