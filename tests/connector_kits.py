"""How the universal suite tests each of the city's connectors: sample records, their native
rendering, and a stand-in of the department's system."""

from __future__ import annotations

from pathlib import Path

from hub.catalogue.model import load_builtin
from hub.connect.testing import Kit, first_records
from hub.datagen import native
from hub.datagen.city import City, CitySize
from hub.datagen.departments import GJJ_GRZH_DDL, SI_CBRY_DDL, DropFolder, PostgresTable, RestEndpoint

NAMES = {d.code: d.name for d in load_builtin().departments}


def _city(seed: int) -> City:
    """A fresh city per call: one City kept across tests gave the real-estate kit 77 properties instead
    of 300 once other kits had drawn from it (its generators share the city's state)."""
    return City(seed, CitySize(3000, 600))


def _records(method: str):
    def records(n: int, seed: int) -> list[dict]:
        return first_records(getattr(_city(seed), method), n)

    return records


def _drop(fmt: str, op_column: str, ops: dict[str, str] | None = None, encoding: str = "utf-8-sig"):
    return lambda workdir, services: DropFolder(workdir, fmt, op_column=op_column, ops=ops, encoding=encoding)


CHINESE_OPS = {"I": "新增", "U": "修改", "D": "删除"}

KITS: dict[str, Kit] = {
    "population": Kit(
        "population",
        _records("residents"),
        native.resident,
        _drop("csv", "CZLX"),
        defects=[("CSRQ", "19900230"), ("RYZTDM", "9"), ("GMSFHM", "510603199001011230")],
    ),
    "market": Kit(
        "market",
        _records("entities"),
        native.entity,
        _drop("jsonl", "CZLX"),
        defects=[("CLRQ", "2015年13月01日"), ("DJZT", "歇业中"), ("JYFW", "食品销售；炼金术")],
    ),
    "credit": Kit(
        "credit",
        _records("credit_entries"),
        lambda c: native.credit_entry(c, NAMES),
        _drop("csv", "操作类型", CHINESE_OPS),
        defects=[("类别", "红名单"), ("列入日期", "2017/02/30"), ("惩戒措施", "限制出境")],
    ),
    "health": Kit(
        "health",
        _records("births"),
        native.birth,
        _drop("xlsx", "操作类型", CHINESE_OPS),
        defects=[("母亲身份证件号码", 5.10603199001011e17), ("性别", "未知")],
    ),
    "civil_affairs": Kit(
        "civil_affairs",
        _records("marriages"),
        native.marriage,
        _drop("csv", "操作类型", CHINESE_OPS, encoding="gb18030"),
        defects=[("业务类别", "订婚登记"), ("登记日期", "2015年02月30日")],
    ),
    "social_security": Kit(
        "social_security",
        _records("insured"),
        native.insured,
        lambda workdir, services: PostgresTable(
            services["postgres"], SI_CBRY_DDL, "si_cbry", "aac002", updated="aae036"
        ),
        defects=[("aae140", "110,999"), ("aac008", "7")],
        needs=("postgres",),
    ),
    "housing_fund": Kit(
        "housing_fund",
        _records("housing_accounts"),
        native.housing_account,
        lambda workdir, services: PostgresTable(
            services["postgres"], GJJ_GRZH_DDL, "gjj_grzh", "grzh", updated="gxsj", deletes="scbz", settle_s=1.1
        ),
        defects=[("grzhzt", "09"), ("zjhm", "51060319900101123X")],
        needs=("postgres",),
    ),
    "real_estate": Kit(
        "real_estate",
        _records("properties"),
        native.property_item,
        lambda workdir, services: RestEndpoint(
            "/bdc/v1/certificates", "bdcqzh", paging="keyset", delete_marker=lambda row: {**row, "yxbz": "0"}
        ),
        defects=[("ghyt", "仓储"), ("mj", "八十平方")],
    ),
    "licences": Kit(
        "licences",
        _records("licences"),
        lambda lic: native.licence_item(lic, NAMES),
        lambda workdir, services: RestEndpoint(
            "/api/licences", "zzbh", paging="cursor", delete_marker=lambda row: {**row, "op": "delete"}
        ),
        defects=[("zzlx", "驾驶证"), ("yxqq", "2017-02-30")],
    ),
}


def workdir_for(base: Path, name: str) -> Path:
    path = base / name
    path.mkdir(parents=True, exist_ok=True)
    return path
