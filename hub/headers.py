"""Metadata headers of the public contract that the proto files cannot state.

In insecure development mode a caller names its department (and subsystem) in these headers:
:mod:`hub.client` sets them and :mod:`hub.governance.identity` reads them. They live here, below
both, so a connector's client does not load the hub's governance code.
"""

DEPARTMENT_HEADER = "x-hub-department"
SUBSYSTEM_HEADER = "x-hub-subsystem"
# Set by a sharded replica on a call it forwards to the shard that holds the key: the receiver
# answers from its own data only and never forwards again.
FORWARDED_HEADER = "x-hub-forwarded"
