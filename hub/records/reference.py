"""The city's reference data and the code tables of the departments' own systems.

Connectors map native codes and labels to the catalogue's values with these tables, and the
synthetic data generator (:mod:`hub.datagen`) renders records with the same tables, so both
sides agree by construction. This is production data: a connector depends on it, never on the
generator.

Division codes are real (GB/T 2260). Deyang (5106) had six county-level
divisions in 2017: Jingyang district, Luojiang county (now district 510604),
Zhongjiang county, and the cities of Guanghan, Shifang and Mianzhu.
"""

from __future__ import annotations

# -- divisions -----------------------------------------------------------------------------------------

# code, name, share of the population, towns or streets
DEYANG = [
    ("510603", "旌阳区", 0.21, ["城北街道", "城南街道", "旌阳街道", "天元街道", "孝泉镇", "黄许镇", "八角井街道"]),
    ("510604", "罗江区", 0.06, ["万安镇", "金山镇", "略坪镇", "鄢家镇"]),
    ("510623", "中江县", 0.30, ["凯江镇", "南华镇", "仓山镇", "通济镇", "辑庆镇"]),
    ("510681", "广汉市", 0.17, ["雒城街道", "三星镇", "向阳镇", "小汉镇", "连山镇"]),
    ("510682", "什邡市", 0.12, ["方亭街道", "皂角街道", "洛水镇", "马祖镇", "师古镇"]),
    ("510683", "绵竹市", 0.14, ["剑南街道", "东北街道", "汉旺镇", "孝德镇", "富新镇"]),
]
DEYANG_CODES = [d[0] for d in DEYANG]
DEYANG_NAMES = {d[0]: d[1] for d in DEYANG}

# -- public security (常住人口) ------------------------------------------------------------------------

# Public security's person status codes (人员状态).
PERSON_STATUS = {"registered": "1", "moved_out": "2", "deceased": "3"}
PERSON_STATUS_BY_CODE = {v: k for k, v in PERSON_STATUS.items()}

# -- market regulation (市场主体登记) ------------------------------------------------------------------

ENTITY_TYPES = {  # credit-code prefix → (catalogue type, native label)
    "91": ("company", "有限责任公司"),
    "92": ("individual_business", "个体工商户"),
    "93": ("farmer_coop", "农民专业合作社"),
}
ENTITY_LABELS = {label: kind for kind, label in ENTITY_TYPES.values()}
ENTITY_STATUS = {"active": "存续", "revoked": "吊销", "cancelled": "注销", "moved_out": "迁出"}
ENTITY_STATUS_BY_LABEL = {v: k for k, v in ENTITY_STATUS.items()}
# Business-scope items: code, text in registrations, the department whose permit it needs ("" if none),
# and the item's rough share of registrations.
SCOPE_ITEMS = [
    ("food_sales", "食品销售", "food_drug", 0.12),
    ("catering", "餐饮服务", "food_drug", 0.10),
    ("food_production", "食品生产", "food_drug", 0.02),
    ("drug_retail", "药品零售", "food_drug", 0.02),
    ("medical_device_ii", "第二类医疗器械经营", "food_drug", 0.02),
    ("road_freight", "道路普通货物运输", "transport", 0.04),
    ("road_passenger", "道路旅客运输", "transport", 0.005),
    ("hazardous_chemicals", "危险化学品经营", "emergency", 0.01),
    ("travel_agency", "旅行社业务", "culture_tourism", 0.005),
    ("publication_retail", "出版物零售", "culture_tourism", 0.01),
    ("internet_cafe", "互联网上网服务", "culture_tourism", 0.005),
    ("private_training", "民办教育培训", "education", 0.01),
    ("general_trade", "日用百货销售", "", 0.25),
    ("software", "软件开发", "", 0.06),
    ("machinery", "通用设备制造", "", 0.08),
    ("consulting", "企业管理咨询", "", 0.08),
    ("agriculture", "农作物种植", "", 0.06),
    ("decoration", "室内装饰装修", "", 0.07),
    ("construction_materials", "建筑材料销售", "", 0.055),
]
SCOPE_TEXT = {code: text for code, text, _, _ in SCOPE_ITEMS}
# Appended to a registered business scope that includes items needing a permit.
PERMIT_NOTE = "（依法须经批准的项目，经相关部门批准后方可开展经营活动）"
SCOPE_BY_TEXT = {text: code for code, text, _, _ in SCOPE_ITEMS}

# -- credit platform (信用记录) ------------------------------------------------------------------------

CREDIT_LABELS = {
    "abnormal_operation": "经营异常名录",
    "serious_violation": "严重违法失信企业名单",
    "admin_license": "行政许可",
    "admin_penalty": "行政处罚",
    "tax_rating_a": "纳税信用A级",
    "honour": "表彰荣誉",
    "contract_default": "合同违约",
}
CREDIT_BY_LABEL = {v: k for k, v in CREDIT_LABELS.items()}
MEASURES = {
    "restrict_procurement": "限制参与政府采购",
    "restrict_bidding": "限制参与招标投标",
    "restrict_honours": "限制授予荣誉称号",
    "restrict_loans": "限制融资贷款",
    "restrict_subsidies": "限制申请财政补贴",
    "restrict_high_consumption": "限制高消费",
}
MEASURE_BY_TEXT = {v: k for k, v in MEASURES.items()}

# -- human resources: social insurance (险种, 参保状态) ------------------------------------------------

INSURANCE_CODES = {"pension": "110", "unemployment": "210", "medical": "310", "injury": "410", "maternity": "510"}
INSURANCE_BY_CODE = {v: k for k, v in INSURANCE_CODES.items()}
INSURED_STATUS = {"contributing": "1", "suspended": "2", "terminated": "3", "retired": "4"}
INSURED_STATUS_BY_CODE = {v: k for k, v in INSURED_STATUS.items()}

# -- housing fund (个人账户状态) -----------------------------------------------------------------------

ACCOUNT_STATUS = {"normal": "01", "sealed": "02", "closed": "03"}
ACCOUNT_STATUS_BY_CODE = {v: k for k, v in ACCOUNT_STATUS.items()}

# -- natural resources: real estate (规划用途, 权属状态) -----------------------------------------------

PROPERTY_USAGE = {"residential": "住宅", "commercial": "商业", "industrial": "工业", "other": "其他"}
PROPERTY_USAGE_BY_LABEL = {v: k for k, v in PROPERTY_USAGE.items()}
PROPERTY_STATUS = {"valid": "现势", "mortgaged": "抵押", "sealed": "查封", "cancelled": "注销"}
PROPERTY_STATUS_BY_LABEL = {v: k for k, v in PROPERTY_STATUS.items()}

# -- health: birth certificates (性别) -----------------------------------------------------------------

GENDER_LABELS = {"1": "男", "2": "女"}
GENDER_BY_LABEL = {v: k for k, v in GENDER_LABELS.items()}

# -- civil affairs: marriage registration (业务类别, 状态) ---------------------------------------------

MARRIAGE_KINDS = {"marriage": "结婚登记", "divorce": "离婚登记", "remarriage": "复婚登记"}
MARRIAGE_KIND_BY_LABEL = {v: k for k, v in MARRIAGE_KINDS.items()}
MARRIAGE_STATUS = {"valid": "有效", "dissolved": "已解除"}
MARRIAGE_STATUS_BY_LABEL = {v: k for k, v in MARRIAGE_STATUS.items()}

# -- approval bureau: licences (证照类型, 证照状态) ----------------------------------------------------

LICENCE_LABELS = {
    "food_business": "食品经营许可证",
    "food_production": "食品生产许可证",
    "drug_business": "药品经营许可证",
    "medical_device_business": "医疗器械经营许可证",
    "road_transport": "道路运输经营许可证",
    "hazardous_chemicals": "危险化学品经营许可证",
    "travel_agency": "旅行社业务经营许可证",
    "publication_business": "出版物经营许可证",
    "internet_service": "网络文化经营许可证",
    "private_school": "民办学校办学许可证",
}
LICENCE_BY_LABEL = {v: k for k, v in LICENCE_LABELS.items()}
LICENCE_STATUS = {"valid": "有效", "revoked": "吊销", "cancelled": "注销", "suspended": "暂停"}
LICENCE_STATUS_BY_LABEL = {v: k for k, v in LICENCE_STATUS.items()}
