"""Tiny, offline, random-weight builds of the real architectures, for tests and benchmarks."""
