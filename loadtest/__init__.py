"""Locust load tests of the hub over gRPC.

- :mod:`loadtest.grpc_user`: the ``GrpcUser`` base; its interceptor reports every call to Locust.
- :mod:`loadtest.workload`: keys and cases from the same seeded generator as the loaded data.
- :mod:`loadtest.locustfile`: one user class per kind of department (``locust -f loadtest/locustfile.py``).
- :mod:`loadtest.city_year`: the "city year" scenario, one command end to end.
"""
