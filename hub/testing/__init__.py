"""Hubs for tests, load tests and benchmarks, shipped with the package so connector authors have them:
in this process (:mod:`hub.testing.harness`) or as a ``hub serve`` child process (:mod:`hub.testing.served`)."""
