"""The administrative-approval bureau: licences and e-certificates, from its change feed.

``GET /api/licences?cursor=..&limit=..`` returns ``{"items": [...], "next_cursor": "..", "has_more": ..}``.
Items: zzbh (证照编号), zzlx (证照类型, e.g. 食品经营许可证), czztdm (持证主体代码), czzt (持证主体),
fzjg (发证机关, by name), yxqq / yxqz (有效期起 / 至), zzzt (证照状态: 有效/吊销/注销/暂停), dzzzbs
(电子证照标识) and op ("upsert" or "delete").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors._native import date_from, lookup, required, text
from hub.catalogue.model import load_builtin
from hub.connect.rest import RestSource
from hub.connect.source import Connector, Source
from hub.records.reference import LICENCE_BY_LABEL, LICENCE_STATUS_BY_LABEL


class LicencesConnector(Connector):
    name = "licences"
    resource = "approval.licence"
    department = "approval_bureau"
    title = "Administrative approval: licences and e-certificates, with validity dates"

    def __init__(self) -> None:
        self._issuers = {d.name: d.code for d in load_builtin().departments}

    def key(self, row: Mapping[str, Any]) -> str:
        return required(row, "zzbh")

    def deleted(self, row: Mapping[str, Any]) -> bool:
        return row.get("op") == "delete"

    def map(self, row: Mapping[str, Any]) -> dict[str, Any]:
        issuer = text(row.get("fzjg"))
        return {
            "licence_no": self.key(row),
            "holder_id": required(row, "czztdm").upper(),
            "holder_name": text(row.get("czzt")),
            "licence_type": lookup(LICENCE_BY_LABEL, row.get("zzlx"), "zzlx"),
            "issuer": lookup(self._issuers, issuer, "fzjg") if issuer else None,
            "valid_from": date_from(row.get("yxqq"), "yxqq", required=True),
            "valid_to": date_from(row.get("yxqz"), "yxqz"),
            "status": lookup(LICENCE_STATUS_BY_LABEL, row.get("zzzt"), "zzzt"),
            "e_certificate_id": text(row.get("dzzzbs")),
        }

    def default_source(self, location: str) -> Source:
        return RestSource(location, paging="cursor", items_path="items")
