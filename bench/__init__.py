"""Benchmarks: the BenchCart object, a load generator, and the `make bench` / `make bench-compare` runner."""
