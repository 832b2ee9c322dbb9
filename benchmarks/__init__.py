"""Benchmarks of the subnetworks toolkit: run them all with ``python benchmarks/run.py [--quick]``."""
