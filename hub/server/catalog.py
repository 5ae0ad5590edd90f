"""Catalog: list, describe and register resources; register departments."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException
from grpc import aio
from pydantic import ValidationError

from hub.catalogue.model import Department, ResourceSpec
from hub.errors import InvalidArgument, PermissionDenied, Unavailable
from hub.governance.catalogue import department_key, entry, resource_key
from hub.governance.identity import HUB_ADMIN, current_caller
from hub.kafka.topics import TopicSpec, ensure_topics
from hub.records.shards import ShardAssignment
from hub.server.convert import department_to_pb, resource_from_pb, resource_to_pb
from hub.server.deps import Deps
from hub.server.interceptors import note_access
from hub.v1 import catalog_pb2, catalog_pb2_grpc

log = logging.getLogger(__name__)


def _validation_message(exc: ValidationError, prefix: str) -> tuple[str, list[tuple[str, str]]]:
    violations = [
        (prefix + "." + ".".join(str(p) for p in e["loc"]) if e["loc"] else prefix, e["msg"]) for e in exc.errors()
    ]
    return "; ".join(f"{f}: {m}" for f, m in violations), violations


class CatalogService(catalog_pb2_grpc.CatalogServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def _describe(self, name: str) -> catalog_pb2.ResourceDescriptor:
        deps = self._deps
        spec = deps.catalogue.resource(name)
        table = deps.cache.tables.get(name)
        return resource_to_pb(
            spec,
            deps.topics.resource(spec.name),
            table.partitions if table else spec.partitions,
            deps.catalogue.version(resource_key(name)),
        )

    async def List(self, request: catalog_pb2.ListRequest, context: aio.ServicerContext) -> catalog_pb2.ListResponse:
        catalogue = self._deps.catalogue
        return catalog_pb2.ListResponse(
            resources=[self._describe(r.name) for r in sorted(catalogue.resources, key=lambda r: r.name)],
            departments=[department_to_pb(d) for d in sorted(catalogue.departments, key=lambda d: d.code)],
        )

    async def Describe(
        self, request: catalog_pb2.DescribeRequest, context: aio.ServicerContext
    ) -> catalog_pb2.DescribeResponse:
        return catalog_pb2.DescribeResponse(resource=self._describe(request.resource))

    async def Shards(
        self, request: catalog_pb2.ShardsRequest, context: aio.ServicerContext
    ) -> catalog_pb2.ShardsResponse:
        """Partition ownership from the shard rule, replicas from the shard registry."""
        deps = self._deps
        router = deps.shards
        count = router.shard.count
        tables = sorted(deps.cache.tables.items())
        response = catalog_pb2.ShardsResponse(count=count)
        for index in range(count):
            shard = ShardAssignment(index, count)
            replicas = router.replicas(index) if router.sharded else [router.address]
            described = response.shards.add(index=index, replicas=replicas)
            for name, table in tables:
                described.partitions.add(
                    resource=name, topic_partitions=table.partitions, partitions=shard.partitions(table.partitions)
                )
        return response

    async def Register(
        self, request: catalog_pb2.RegisterRequest, context: aio.ServicerContext
    ) -> catalog_pb2.RegisterResponse:
        deps = self._deps
        caller = current_caller.get()
        note_access("catalogue.register", request.resource.name, detail=f"by {caller.label}")
        try:
            spec = ResourceSpec.model_validate(resource_from_pb(request.resource))
        except ValidationError as exc:
            message, violations = _validation_message(exc, "resource")
            raise InvalidArgument(message, field="resource", violations=violations) from None
        existing = deps.catalogue.resource(spec.name) if spec.name in deps.catalogue else None
        if caller.department != HUB_ADMIN:
            if spec.provider != caller.department:
                raise PermissionDenied(
                    f"{caller.label} may register only its own resources, not ones provided by {spec.provider}"
                )
            if existing is not None and existing.provider != caller.department:
                raise PermissionDenied(f"{spec.name} is provided by {existing.provider}; only it may change the entry")
        if deps.catalogue.department(spec.provider) is None:
            raise InvalidArgument(
                f"resource.provider: {spec.provider!r} is not a registered department", field="resource.provider"
            )
        if existing is not None and existing.partitions != spec.partitions:
            raise InvalidArgument(
                "resource.partitions: a resource's partition count cannot change (keys would move)",
                field="resource.partitions",
            )
        try:
            await _create_topic(deps, spec)
        except KafkaException as exc:
            raise Unavailable(f"could not create the topic of {spec.name}: {exc}") from None
        key = resource_key(spec.name)
        version = deps.catalogue.version(key) + 1
        await deps.write_state(deps.topics.catalogue, key, entry(spec.model_dump(mode="json"), version, caller.label))
        log.info("catalogue: %s v%d registered by %s", spec.name, version, caller.label)
        return catalog_pb2.RegisterResponse(resource=self._describe(spec.name))

    async def RegisterDepartment(
        self, request: catalog_pb2.RegisterDepartmentRequest, context: aio.ServicerContext
    ) -> catalog_pb2.RegisterDepartmentResponse:
        deps = self._deps
        caller = current_caller.get()
        d = request.department
        note_access("catalogue.register_department", "", detail=f"{d.code} by {caller.label}")
        if caller.department != HUB_ADMIN:
            raise PermissionDenied(f"only the hub administrator may register departments, not {caller.label}")
        try:
            department = Department(code=d.code, name=d.name, title=d.title or d.name)
        except ValidationError as exc:
            message, violations = _validation_message(exc, "department")
            raise InvalidArgument(message, field="department", violations=violations) from None
        if not department.code.replace("_", "").isalnum():
            raise InvalidArgument("department.code: letters, digits and underscores only", field="department.code")
        key = department_key(department.code)
        version = deps.catalogue.version(key) + 1
        await deps.write_state(deps.topics.catalogue, key, entry(department.model_dump(), version, caller.label))
        return catalog_pb2.RegisterDepartmentResponse(department=department_to_pb(department), version=version)


async def _create_topic(deps: Deps, spec: ResourceSpec) -> None:
    import asyncio

    await asyncio.to_thread(ensure_topics, deps.admin, [TopicSpec(deps.topics.resource(spec.name), spec.partitions)])
