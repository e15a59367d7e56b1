"""Printer unplugged mid-batch. The spool's own tests already pull
the cable of an emulated printer (a pty pair) in the middle of a batch of 50,
in every printer language, and check each label is printed exactly once, or
held for a person when the printer cannot say whether it printed; they are
collected here unchanged so that `-m fault` runs them with the other faults."""

from __future__ import annotations

from tests import test_spool_batch as spool_tests

test_printer_unplugged_mid_batch_prints_each_label_once = \
    spool_tests.test_cable_pulled_mid_batch_prints_each_label_once
test_printer_without_counter_unplugged_mid_batch_holds_the_label_for_a_person = \
    spool_tests.test_cable_pulled_on_a_printer_without_counter_holds_the_label_for_a_person
