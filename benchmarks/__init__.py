"""Benchmarks: each measures overnight against a baseline run in the same process and prints the ratio."""
