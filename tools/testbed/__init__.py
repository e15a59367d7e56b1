"""The real parts that the benchmarks and the tests both run against:
brokers (Mosquitto with the shipped config and dynamic security, the
embedded amqtt broker), a wire-level handheld client and a `#` spy, a
gateway on a home of fake parcels, and the MicroPython VM's handheld
prelude. Shipped, so that an installed `veilpost bench` has them; the
tests' fixtures (tests/fixtures/) wrap these, never copy them."""
