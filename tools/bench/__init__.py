"""Benchmarks: each module measures one part of veilpost and has a function returning a
dict of figures; `veilpost bench` (tools/bench/run.py) runs them all and
writes one JSON report."""
