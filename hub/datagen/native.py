"""Catalogue records rendered the way each department's own system holds them.

The connectors in ``connectors/`` map these native rows back to the catalogue, so
``connector.map(native(record)) == record`` is each connector's round-trip test. Incremental file
drops carry an operation column (I/U/D or 新增/修改/删除), as the city's exchange files do.
The code tables both sides use are in :mod:`hub.records.reference`.
"""

from __future__ import annotations

import datetime as dt

from hub.records import reference as tables

OPERATIONS = {"I": "新增", "U": "修改", "D": "删除"}


def _compact(iso: str | None) -> str:
    return iso.replace("-", "") if iso else ""


def _chinese_date(iso: str) -> str:
    y, m, d = iso.split("-")
    return f"{y}年{m}月{d}日"


# -- file drops ----------------------------------------------------------------------------------------


def resident(r: dict, op: str = "I") -> dict:
    """Public security's CSV (常住人口): pinyin-initial column codes, YYYYMMDD dates."""
    rid = r["resident_id"]
    return {
        "GMSFHM": rid.lower() if rid.endswith("X") and rid[7] in "02468" else rid,  # some store "x"
        "XM": r["name"],
        "XBDM": r["gender"],
        "MZDM": r.get("ethnicity") or "",
        "CSRQ": _compact(r["birth_date"]),
        "HJDZ_XZQHDM": r["district_code"],
        "HJDZ_QHNXXDZ": r.get("address") or "",
        "HH": r.get("household_id") or "",
        "YHZGXDM": r.get("relation_to_head") or "",
        "RYZTDM": tables.PERSON_STATUS[r["status"]],
        "DJRQ": _compact(r.get("registered_on")),
        "GXSJ": f"{r.get('registered_on') or '2017-01-01'} 09:30:00",
        "CZLX": op,
    }


def entity(e: dict, op: str = "I") -> dict:
    """Market regulation's JSON Lines (市场主体登记): Chinese labels, 年月日 dates, scope as text."""
    scope = "；".join(tables.SCOPE_TEXT[s] for s in e["business_scope"])
    if any(s[0] in e["business_scope"] and s[2] for s in tables.SCOPE_ITEMS):
        scope += tables.PERMIT_NOTE
    district = e["district_code"]
    return {
        "TYSHXYDM": e["credit_code"],
        "ZTMC": e["name"],
        "ZTLX": tables.ENTITY_TYPES[e["credit_code"][:2]][1],
        "FDDBR": e.get("legal_rep_name"),
        "FDDBRZJHM": e.get("legal_rep_id"),
        "ZS": e.get("address"),
        "ZCZB": f"{e['registered_capital']:.4f}" if e.get("registered_capital") is not None else "",
        "CLRQ": _chinese_date(e["established_on"]),
        "DJZT": tables.ENTITY_STATUS[e["status"]],
        "JYFW": scope,
        "DZHY": e.get("registration_items") or [],
        "DJJG": f"德阳市{tables.DEYANG_NAMES.get(district, '')}市场监督管理局",
        "HZRQ": e.get("approved_on"),
        "CZLX": op,
    }


def credit_entry(c: dict, department_names: dict[str, str], op: str = "I") -> dict:
    """The credit platform's CSV (信用记录): Chinese headers and labels, YYYY/MM/DD dates."""
    return {
        "记录编号": c["entry_id"],
        "统一社会信用代码": c["credit_code"],
        "类别": tables.CREDIT_LABELS[c["category"]],
        "事由": c.get("reason") or "",
        "决定机关": department_names.get(c.get("authority") or "", ""),
        "列入日期": c["listed_on"].replace("-", "/"),
        "移出日期": (c.get("removed_on") or "").replace("-", "/"),
        "惩戒措施": "、".join(tables.MEASURES[m] for m in c.get("measures") or []),
        "操作类型": OPERATIONS[op],
    }


def birth(b: dict, op: str = "I") -> dict:
    """Health's Excel sheet (出生医学证明): Excel dates, 男/女."""
    return {
        "出生医学证明编号": b["cert_no"],
        "新生儿姓名": b.get("child_name") or "",
        "性别": tables.GENDER_LABELS.get(b.get("child_gender") or "", ""),
        "出生日期": dt.date.fromisoformat(b["birth_date"]),
        "母亲身份证件号码": b.get("mother_id") or "",
        "父亲身份证件号码": b.get("father_id") or "",
        "接生机构名称": b.get("hospital") or "",
        "出生地区划代码": b.get("district_code") or "",
        "操作类型": OPERATIONS[op],
    }


def marriage(m: dict, op: str = "I") -> dict:
    """Civil affairs' CSV export from a Windows system (GB18030): 年月日 dates, registry by name."""
    district = m.get("district_code") or ""
    return {
        "登记证字号": m["record_no"],
        "业务类别": tables.MARRIAGE_KINDS[m["kind"]],
        "男方证件号码": m["husband_id"],
        "女方证件号码": m["wife_id"],
        "登记日期": _chinese_date(m["registered_on"]),
        "登记机关": f"德阳市{tables.DEYANG_NAMES.get(district, '')}民政局婚姻登记处",
        "状态": tables.MARRIAGE_STATUS[m["status"]],
        "操作类型": OPERATIONS[op],
    }


# -- database tables ----------------------------------------------------------------------------------


def insured(r: dict) -> dict:
    """Social security's table si_cbry (金保工程 field codes)."""
    last = r.get("last_paid_on")
    return {
        "aac002": r["resident_id"],
        "aac003": r.get("name"),
        "aae140": ",".join(tables.INSURANCE_CODES[t] for t in r.get("insurance_types") or []),
        "aac008": tables.INSURED_STATUS[r["status"]],
        "aab001": r.get("employer_credit_code"),
        "aab301": r.get("district_code"),
        "aae201": r.get("contribution_months"),
        "aae002": last[:7].replace("-", "") if last else None,
    }


def housing_account(a: dict) -> dict:
    """The housing fund's table gjj_grzh (个人账户)."""
    return {
        "grzh": a["account_no"],
        "zjhm": a["resident_id"],
        "xingming": a.get("name"),
        "dwtyxydm": a.get("employer_credit_code"),
        "grzhzt": tables.ACCOUNT_STATUS[a["status"]],
        "yjce": a.get("monthly_deposit"),
        "grzhye": a.get("balance"),
        "zhjcrq": a.get("last_deposit_on"),
        "khrq": a["opened_on"],
    }


# -- REST endpoints -----------------------------------------------------------------------------------


def property_item(p: dict) -> dict:
    """Real-estate registration's sharing API (不动产登记信息共享接口)."""
    return {
        "bdcqzh": p["cert_no"],
        "qlrzjhm": p["owner_id"],
        "qlrmc": p.get("owner_name"),
        "zl": p.get("address"),
        "xzqdm": p["district_code"],
        "ghyt": tables.PROPERTY_USAGE.get(p.get("usage") or "", ""),
        "mj": f"{p['area_m2']:.2f}" if p.get("area_m2") is not None else "",
        "djsj": f"{p['registered_on']} 10:00:00",
        "qszt": tables.PROPERTY_STATUS[p["status"]],
        "yxbz": "1",
    }


def licence_item(lic: dict, department_names: dict[str, str]) -> dict:
    """The approval bureau's e-licence change feed (电子证照接口)."""
    return {
        "zzbh": lic["licence_no"],
        "zzlx": tables.LICENCE_LABELS[lic["licence_type"]],
        "czztdm": lic["holder_id"],
        "czzt": lic.get("holder_name"),
        "fzjg": department_names.get(lic.get("issuer") or "", ""),
        "yxqq": lic["valid_from"],
        "yxqz": lic.get("valid_to") or "",
        "zzzt": tables.LICENCE_STATUS[lic["status"]],
        "dzzzbs": lic.get("e_certificate_id") or "",
        "op": "upsert",
    }
