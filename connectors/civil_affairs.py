"""Civil affairs: marriage registrations, CSV drops from a Windows system, encoded in GB18030.

Columns: 登记证字号, 业务类别 (结婚登记/离婚登记/复婚登记), 男方证件号码, 女方证件号码, 登记日期
(YYYY年MM月DD日), 登记机关 (the registry office by name, which names its district), 状态 (有效/已解除),
操作类型 (新增/修改/删除).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors._native import date_from, lookup, required, text
from hub.connect.files import file_source
from hub.connect.source import Connector, Source
from hub.records.reference import DEYANG_NAMES, MARRIAGE_KIND_BY_LABEL, MARRIAGE_STATUS_BY_LABEL

_OFFICES = {f"德阳市{name}民政局婚姻登记处": code for code, name in DEYANG_NAMES.items()}


class MarriageConnector(Connector):
    name = "civil_affairs"
    resource = "civil_affairs.marriage"
    department = "civil_affairs"
    title = "Civil affairs: marriage registration"

    def key(self, row: Mapping[str, Any]) -> str:
        return required(row, "登记证字号")

    def deleted(self, row: Mapping[str, Any]) -> bool:
        return str(row.get("操作类型") or "").strip() == "删除"

    def map(self, row: Mapping[str, Any]) -> dict[str, Any]:
        office = text(row.get("登记机关"))
        return {
            "record_no": self.key(row),
            "kind": lookup(MARRIAGE_KIND_BY_LABEL, row.get("业务类别"), "业务类别"),
            "husband_id": required(row, "男方证件号码").upper(),
            "wife_id": required(row, "女方证件号码").upper(),
            "registered_on": date_from(row.get("登记日期"), "登记日期", required=True),
            "district_code": lookup(_OFFICES, office, "登记机关") if office else None,
            "status": lookup(MARRIAGE_STATUS_BY_LABEL, row.get("状态"), "状态"),
        }

    def default_source(self, location: str) -> Source:
        return file_source(location, "csv", encoding="gb18030")
