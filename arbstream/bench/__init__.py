"""``arbstream bench``: throughput and latency of every pipeline stage next to the broker's own limit.

A benchmark, not a test: it measures on the local machine with the real broker
and reports; it never fails on a threshold. See docs/decisions/0006-benchmarks.md.
"""
