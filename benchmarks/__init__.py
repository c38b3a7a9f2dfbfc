"""Measurements that run beside the package (make targets, `python -m benchmarks.…`)."""
