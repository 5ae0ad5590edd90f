"""Out-of-range and unknown values in the flows' and governance's requests: INVALID_ARGUMENT,
naming the field, instead of an error from deep inside or a silently empty answer."""

from __future__ import annotations

import time

import grpc
import pytest

from hub.v1 import (
    audit_pb2,
    common_pb2,
    governance_pb2,
    notices_pb2,
    notices_pb2_grpc,
    subscription_pb2,
    subscription_pb2_grpc,
)
from tests.hubtest import CTX, RunningHub

RESIDENT = "population.resident"
HUGE_CURSOR = "c1:" + "9" * 100_000


def test_out_of_range_and_unknown_values_are_invalid_argument(hub: RunningHub) -> None:
    provider = hub.client("public_security")
    consumer = hub.client("education")
    filed = consumer.governance.RequestAccess(
        governance_pb2.RequestAccessRequest(
            resource=RESIDENT, purposes=[common_pb2.PURPOSE_LEGAL_BASIS], legal_basis="《义务教育法》"
        )
    ).request
    subscriptions = subscription_pb2_grpc.SubscriptionStub(provider.channel)
    notices = notices_pb2_grpc.NoticesStub(provider.channel)
    calls = [
        ("limit", lambda: provider.audit.QueryResource(audit_pb2.QueryResourceRequest(resource=RESIDENT, limit=-1))),
        ("state", lambda: notices.List(notices_pb2.NoticesListRequest(state=42))),
        ("state", lambda: consumer.governance.ListAccessRequests(governance_pb2.ListAccessRequestsRequest(state="x"))),
        (
            "expires_at_ms",
            lambda: provider.governance.DecideAccess(
                governance_pb2.DecideAccessRequest(
                    request_id=filed.id,
                    decision=governance_pb2.DECISION_APPROVE,
                    expires_at_ms=int(time.time() * 1000) - 1000,
                )
            ),
        ),
        (
            "filters",
            lambda: next(
                subscriptions.Subscribe(
                    subscription_pb2.SubscribeRequest(
                        resource=RESIDENT,
                        filters=[subscription_pb2.SubscriptionFilter(field="district_code", prefix="51")] * 17,
                        context=CTX,
                    )
                )
            ),
        ),
        (
            "cursor",
            lambda: subscriptions.Ack(subscription_pb2.AckRequest(name="s", resource=RESIDENT, cursor=HUGE_CURSOR)),
        ),
    ]
    for field, call in calls:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, err.value.details())
        assert err.value.details().startswith(field), (field, err.value.details())
