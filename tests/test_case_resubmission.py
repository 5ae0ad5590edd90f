"""A case number is recorded once: the same case resubmitted (a retry after a lost answer) gets the
recorded result and no second event, on this replica and on a replica started after it; different
content under that number is ALREADY_EXISTS naming the number. Unsharded and at two shards."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from hub.datagen.city import resident_ids
from hub.v1 import cases_pb2, cases_pb2_grpc, common_pb2
from tests.faults import count_by_key
from tests.hubtest import resident, running_layout

APPLICANT, OTHER = resident_ids(43, 2)


def _case(number: str, district: str = "510603", applicant: str = APPLICANT) -> cases_pb2.SubmitRequest:
    return cases_pb2.SubmitRequest(
        case_number=number,
        case_type="household_transfer",
        applicant=applicant,
        date="2017-11-30",
        params={"district": district},
        purpose=common_pb2.PURPOSE_LEGAL_BASIS,
    )


@pytest.mark.parametrize("count", [1, 2], ids=["whole", "2-shards"])
def test_a_resubmitted_case_is_answered_from_its_record(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, count: int
) -> None:
    with running_layout(kafka_bootstrap, topic_prefix, tmp_path, count) as hub:
        hub.publish("population.resident", [resident(APPLICANT), resident(OTHER)])
        cases = cases_pb2_grpc.CasesStub(hub.client("approval_bureau").channel)
        first = cases.Submit(_case("DY-RESUBMIT-1"), timeout=30).result
        assert cases.Submit(_case("DY-RESUBMIT-1"), timeout=30).result == first
        with pytest.raises(grpc.RpcError) as caught:
            cases.Submit(_case("DY-RESUBMIT-1", district="510681"), timeout=30)
        assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert "DY-RESUBMIT-1" in caught.value.details()

        batch = cases.SubmitBatch(
            cases_pb2.SubmitBatchRequest(
                cases=[
                    _case("DY-RESUBMIT-1"),  # recorded: its result again
                    _case("DY-RESUBMIT-2", applicant=OTHER),
                    _case("DY-RESUBMIT-2", applicant=OTHER),  # twice in one batch: one event
                    _case("DY-RESUBMIT-1", applicant=OTHER),  # a recorded number, other content
                ]
            ),
            timeout=30,
        ).results
        assert batch[0] == first
        assert batch[1] == batch[2] and not batch[1].error
        assert "cases[3]" in batch[3].error and "DY-RESUBMIT-1" in batch[3].error
        topic = hub.server.topics.cases
    # a replica started afterwards knows the recorded cases from the topic
    with running_layout(kafka_bootstrap, topic_prefix, tmp_path, count) as hub:
        cases = cases_pb2_grpc.CasesStub(hub.client("approval_bureau").channel)
        assert cases.Submit(_case("DY-RESUBMIT-1"), timeout=30).result == first
    assert count_by_key(kafka_bootstrap, topic) == {"DY-RESUBMIT-1": 1, "DY-RESUBMIT-2": 1}
