"""Operator and developer programs: the `veilpost` CLI, provisioning, the
handheld simulator and fleet, benchmarks, firmware build and deploy."""
