"""Sharding by Kafka partition: placement as the producer's, what each shard holds, forwarding both
ways, the routing client, cases across shards, a shard that is down, a killed replica's lapsed lease,
and resharding (1 shard → 4) with snapshots."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from hub.cache.shards import announcement
from hub.catalogue.model import BUILTIN_PATH
from hub.client import ShardRoutes, open_channel
from hub.governance.pki import CertificateAuthority
from hub.headers import FORWARDED_HEADER
from hub.kafka.clients import admin_config, producer_config
from hub.kafka.topics import TopicSpec, ensure_topics
from hub.records.identifiers import with_resident_check_digit
from hub.records.partitioner import partition_for
from hub.records.shards import ShardAssignment, shard_of
from hub.v1 import cases_pb2, cases_pb2_grpc, catalog_pb2, common_pb2, verification_pb2, verification_pb2_grpc
from tests.faults import topic_records, wait_for
from tests.hubtest import CTX, RunningHub, resident, running_hub, running_shards

RES = "population.resident"
RIDS = [with_resident_check_digit(f"51060319900101{n:03d}") for n in range(40)]


def _found(hub: RunningHub, key: str) -> bool:
    return hub.verify(RES, key).found


def test_assignment_parses_and_splits_partitions() -> None:
    assert ShardAssignment.parse("1/4").partitions(6) == (1, 5)
    assert ShardAssignment.parse("3/4").partitions(3) == ()
    for bad in ("4/4", "1/0", "a/2", "1"):
        with pytest.raises(ValueError, match="shard"):
            ShardAssignment.parse(bad)


def test_partitioner_places_keys_where_the_producer_does(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}placement"
    ensure_topics(AdminClient(admin_config(kafka_bootstrap)), [TopicSpec(topic, 6)])
    producer = Producer(producer_config(kafka_bootstrap))
    placed: dict[str, int] = {}
    for key in RIDS:
        producer.produce(
            topic, b"{}", key.encode(), on_delivery=lambda err, m: placed.__setitem__(m.key().decode(), m.partition())
        )
    assert producer.flush(30) == 0
    assert placed == {key: partition_for(key, 6) for key in RIDS}


def test_two_shards_hold_their_share_forward_route_and_fail_unavailable(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_shards(kafka_bootstrap, topic_prefix, tmp_path, 2) as shards:
        published = shards[0].publish(RES, [resident(r) for r in RIDS])
        for hub in shards:  # read your writes on both, each key answered by whichever shard is asked
            for key in RIDS:
                assert hub.verify(RES, key, after=published).found, key
        owner = {key: shard_of(key, 6, 2) for key in RIDS}
        assert set(owner.values()) == {0, 1}
        for index, hub in enumerate(shards):  # each holds exactly its partitions' keys
            assert hub.server.cache is not None
            version = hub.server.cache.version(RES)
            assert {k for k in RIDS if version.row(k) >= 0} == {k for k in RIDS if owner[k] == index}

        shard_map = shards[0].catalog.Shards(catalog_pb2.ShardsRequest())
        assert shard_map.count == 2
        assert [list(s.replicas) for s in shard_map.shards] == [[h.address] for h in shards]
        routes = ShardRoutes(shards[1].channel, lambda address: open_channel(address, department="public_security"))
        try:
            for key in RIDS[:10]:
                assert routes.shard_of(RES, key) == owner[key]
                stub = verification_pb2.VerifyRequest(resource=RES, key=key, context=CTX)
                assert verification_pb2_grpc.VerificationStub(routes.channel(RES, key)).Verify(stub, timeout=30).found
        finally:
            routes.close()

        batch = shards[0].verification.VerifyBatch(
            verification_pb2.VerifyBatchRequest(resource=RES, keys=RIDS, context=CTX), timeout=30
        )
        assert all(batch.found)

        cases = cases_pb2_grpc.CasesStub(shards[0].channel)  # as public_security, the residents' provider
        far, near = (next(k for k in RIDS if owner[k] == index) for index in (1, 0))
        result = cases.Submit(_case("C-1", far), timeout=30).result  # its resident checked by shard 1
        assert result.evidence[0].outcome == cases_pb2.EVIDENCE_OUTCOME_SATISFIED, result.evidence[0].reason
        with pytest.raises(grpc.RpcError) as err:  # a shard's part of a case is for replicas to ask
            cases.CheckEvidence(
                cases_pb2.CheckEvidenceRequest(
                    queries=[cases_pb2.EvidenceQuery(submitted=_case("C-2", far), evidence="registered_resident")]
                ),
                timeout=30,
            )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

        shards[1].stop()  # every replica of shard 1 gone: its keys are UNAVAILABLE, never NOT_FOUND
        shards.pop()
        for key in RIDS:
            if owner[key] == 0:
                assert _found(shards[0], key)
                continue
            with pytest.raises(grpc.RpcError) as err:
                shards[0].verify(RES, key)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, key
        with pytest.raises(grpc.RpcError) as err:
            shards[0].verification.VerifyBatch(
                verification_pb2.VerifyBatchRequest(resource=RES, keys=RIDS, context=CTX), timeout=30
            )
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        for applicant in (far, near):  # near's home is looked up by owner, on every shard
            with pytest.raises(grpc.RpcError) as err:
                cases.Submit(_case(f"C-{applicant}", applicant), timeout=30)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, applicant


def _case(number: str, applicant: str) -> cases_pb2.SubmitRequest:
    return cases_pb2.SubmitRequest(
        case_type="household_transfer",
        case_number=number,
        applicant=applicant,
        date="2017-11-30",
        params={"district": "510603"},
        purpose=common_pb2.PURPOSE_LEGAL_BASIS,
    )


def test_a_killed_replica_drops_out_of_the_shard_map(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    """A killed replica writes no tombstone and stops renewing its lease: once the lease lapses it leaves
    the map and calls stop trying it, while the live replicas renew theirs."""
    with running_shards(kafka_bootstrap, topic_prefix, tmp_path, 2, shard_lease_s=6) as shards:
        router = shards[0].server.deps.shards
        live = shards[1].address
        first = router.registry.values[live]["at_ms"]
        killed = "127.0.0.1:9"  # its last renewal, and then nothing, as a replica killed with SIGKILL leaves it
        producer = Producer(producer_config(kafka_bootstrap))
        value = orjson.dumps(announcement(ShardAssignment(1, 2)))
        producer.produce(shards[0].server.topics.shards, value, killed.encode())
        assert producer.flush(30) == 0
        wait_for(lambda: killed in router.registry.values, "the killed replica's last announcement read")
        wait_for(lambda: killed not in router.replicas(1), "the killed replica's lease to lapse")
        assert killed in router.registry.values  # still on the topic: left out by its age, not a tombstone
        wait_for(lambda: router.registry.values[live]["at_ms"] > first, "the live replica to renew its lease")
        listed = [[h.address] for h in shards]
        wait_for(
            lambda: [list(s.replicas) for s in shards[0].catalog.Shards(catalog_pb2.ShardsRequest()).shards] == listed,
            "the map to list the live replicas only",
        )


def test_reshard_one_to_four_keeps_answers_and_snapshots_per_shard(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path) as whole:
        published = whole.publish(RES, [resident(r, district_code="510681") for r in RIDS])
        assert all(whole.verify(RES, k, {"district_code": "510681"}, after=published).match for k in RIDS)
    # The whole cache's snapshot is not a shard's: each new shard replays its partitions, then snapshots
    # them. Shard 3 of 4 holds no partition of the 3-partition topics, and is ready all the same.
    with running_shards(kafka_bootstrap, topic_prefix, tmp_path, 4) as shards:
        for hub in shards:
            assert hub.server.cache is not None and not hub.server.cache.loaded_from_snapshot
        assert all(shards[3].verify(RES, k, {"district_code": "510681"}).match for k in RIDS)
        held = [h.server.cache.version(RES).live for h in shards if h.server.cache]
        assert sum(held) == len(RIDS)
    with running_shards(kafka_bootstrap, topic_prefix, tmp_path, 4) as shards:
        loaded = [h.server.cache.loaded_from_snapshot.get(RES, 0) for h in shards if h.server.cache]
        assert loaded == held  # each recovered only its own share
        assert all(shards[0].verify(RES, k, {"district_code": "510681"}).match for k in RIDS)


def test_repartition_through_a_new_prefix_moves_keys_and_keeps_answers(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """deploy/README's partition-count change (population.resident, 6 partitions to 8): a new prefix whose
    catalogue declares the new count, the latest record of each key copied through a producer with the
    hub's partitioner; the new layout (two shards) answers every key as the old hub did, from the
    partition the new count places it on, and a deleted key stays deleted."""
    kept, deleted = RIDS[:-1], RIDS[-1]
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "old") as old:
        old.publish(RES, [resident(r, district_code="510681") for r in RIDS])
        old.publish(RES, [(deleted, None)])
        old_topic = old.server.topics.resource(RES)
    latest = {m.key(): m for m in topic_records(kafka_bootstrap, old_topic)}  # a key's partition keeps its order
    catalogue = tmp_path / "catalogue.toml"
    declared, changed = re.subn(
        r'(name = "population\.resident"\n(?:.*\n)*?)partitions = 6\n', r"\1partitions = 8\n", BUILTIN_PATH.read_text()
    )
    assert changed == 1
    catalogue.write_text(declared)
    with running_shards(kafka_bootstrap, f"{topic_prefix}v2.", tmp_path / "new", 2, catalogue_path=catalogue) as shards:
        assert all(h.server.cache and h.server.cache.table(RES).partitions == 8 for h in shards)
        producer = Producer(producer_config(kafka_bootstrap))
        for key, m in latest.items():
            if m.value() is not None:  # a deleted key is not carried over
                producer.produce(shards[0].server.topics.resource(RES), m.value(), key, headers=m.headers())
        assert producer.flush(30) == 0
        request = verification_pb2.VerifyBatchRequest(
            resource=RES,
            keys=RIDS,
            claims=[verification_pb2.ClaimColumn(field="district_code", values=["510681"])],
            context=CTX,
        )
        wait_for(
            lambda: sum(shards[0].verification.VerifyBatch(request, timeout=30).match) == len(kept),
            "the copied records to be answered",
        )
        assert not shards[1].verify(RES, deleted).found
        assert any(partition_for(k, 6) != partition_for(k, 8) for k in kept)  # keys did move
        for key in kept:  # each on the shard of its new partition
            owner = shards[shard_of(key, 8, 2)].server.cache
            assert owner is not None and owner.version(RES).row(key) >= 0, key


def test_forwarding_under_mutual_tls(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    """A replica forwards with the hub's server certificate (O=hub, OU=replica), naming the caller;
    that certificate alone, naming no caller, is refused."""
    ca = CertificateAuthority(tmp_path / "pki")
    ca.init()
    with running_shards(kafka_bootstrap, topic_prefix, tmp_path / "data", 2, tls_dir=ca.dir) as shards:
        published = shards[0].publish(RES, [resident(r) for r in RIDS])
        assert all(shards[0].verify(RES, k, after=published).found for k in RIDS)
        batch = shards[1].verification.VerifyBatch(
            verification_pb2.VerifyBatchRequest(resource=RES, keys=RIDS, context=CTX), timeout=30
        )
        assert all(batch.found)
        cases = cases_pb2_grpc.CasesStub(shards[1].channel)  # public_security's certificate
        far = next(k for k in RIDS if shard_of(k, 6, 2) == 0)
        result = cases.Submit(_case("C-TLS-1", far), timeout=30).result
        assert result.evidence[0].outcome == cases_pb2.EVIDENCE_OUTCOME_SATISFIED, result.evidence[0].reason
        with pytest.raises(grpc.RpcError) as err:  # a department's certificate is no replica's, whatever it says
            cases.FindRestrictions(cases_pb2.FindRestrictionsRequest(), metadata=((FORWARDED_HEADER, "1"),), timeout=30)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        replica = open_channel(shards[0].address, tls=(ca.dir / "ca.crt", ca.dir / "server.crt", ca.dir / "server.key"))
        with pytest.raises(grpc.RpcError) as err:
            verification_pb2_grpc.VerificationStub(replica).Verify(
                verification_pb2.VerifyRequest(resource=RES, key=RIDS[0], context=CTX), timeout=30
            )
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
