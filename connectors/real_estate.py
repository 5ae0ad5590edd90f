"""Natural resources (real-estate registration): property certificates from its sharing API.

``GET /bdc/v1/certificates?since=..&after=..&size=..`` returns ``{"code": 0, "data": {"list": [...]}}``
in (gxsj, bdcqzh) order. Items: bdcqzh (不动产权证书号), qlrzjhm (权利人证件号码), qlrmc, zl (坐落),
xzqdm, ghyt (规划用途, Chinese label), mj (面积, a string), djsj (登记时间), qszt (权属状态, Chinese
label), yxbz (有效标志: "0" means the certificate was withdrawn from the register).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors._native import date_from, lookup, required, text
from hub.connect.rest import RestSource
from hub.connect.source import Connector, MappingError, Source
from hub.records.reference import PROPERTY_STATUS_BY_LABEL, PROPERTY_USAGE_BY_LABEL


class RealEstateConnector(Connector):
    name = "real_estate"
    resource = "property.certificate"
    department = "natural_resources"
    title = "Real-estate registration: property certificates"

    def key(self, row: Mapping[str, Any]) -> str:
        return required(row, "bdcqzh")

    def deleted(self, row: Mapping[str, Any]) -> bool:
        return str(row.get("yxbz") or "1") == "0"

    def map(self, row: Mapping[str, Any]) -> dict[str, Any]:
        area = text(row.get("mj"))
        try:
            area_m2 = float(area) if area is not None else None
        except ValueError:
            raise MappingError(f"{area!r} is not an area", field="mj") from None
        usage = text(row.get("ghyt"))
        return {
            "cert_no": self.key(row),
            "owner_id": required(row, "qlrzjhm").upper(),
            "owner_name": text(row.get("qlrmc")),
            "district_code": required(row, "xzqdm"),
            "address": text(row.get("zl")),
            "usage": lookup(PROPERTY_USAGE_BY_LABEL, usage, "ghyt") if usage else None,
            "area_m2": area_m2,
            "registered_on": date_from(str(row.get("djsj") or "")[:10], "djsj", required=True),
            "status": lookup(PROPERTY_STATUS_BY_LABEL, row.get("qszt"), "qszt"),
        }

    def default_source(self, location: str) -> Source:
        return RestSource(location, paging="keyset", items_path="data.list", key="bdcqzh", updated="gxsj")
