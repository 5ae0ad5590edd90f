"""Catalog.List and Catalog.Describe."""

from __future__ import annotations

from grpc import aio

from hub.catalogue.model import Catalogue
from hub.records.codec import topic_for
from hub.server.convert import resource_to_pb
from hub.v1 import catalog_pb2, catalog_pb2_grpc


class CatalogService(catalog_pb2_grpc.CatalogServicer):
    def __init__(self, catalogue: Catalogue, topic_prefix: str, partitions: dict[str, int]) -> None:
        self._catalogue = catalogue
        self._prefix = topic_prefix
        self._partitions = partitions

    def _describe(self, name: str) -> catalog_pb2.ResourceDescriptor:
        spec = self._catalogue.resource(name)
        topic = topic_for(self._prefix, spec.name)
        return resource_to_pb(spec, topic, self._partitions.get(topic, spec.partitions))

    async def List(self, request: catalog_pb2.ListRequest, context: aio.ServicerContext) -> catalog_pb2.ListResponse:
        return catalog_pb2.ListResponse(resources=[self._describe(r.name) for r in self._catalogue.resources])

    async def Describe(
        self, request: catalog_pb2.DescribeRequest, context: aio.ServicerContext
    ) -> catalog_pb2.DescribeResponse:
        return catalog_pb2.DescribeResponse(resource=self._describe(request.resource))
