"""Reference data for realistic synthetic records: Deyang's divisions, names, business scopes.

Division codes are real (GB/T 2260). Deyang (5106) had six county-level
divisions in 2017: Jingyang district, Luojiang county (now district 510604),
Zhongjiang county, and the cities of Guanghan, Shifang and Mianzhu.
"""

from __future__ import annotations

# code, name, population weight, towns or streets
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
# Birth registration places outside Deyang (Chengdu, Mianyang, Suining, Chongqing, Hubei).
ELSEWHERE = [
    "510104",
    "510105",
    "510106",
    "510107",
    "510108",
    "510703",
    "510704",
    "510903",
    "500103",
    "500106",
    "420106",
    "510626",
]

ROADS = [
    "长江西路",
    "长江东路",
    "黄河西路",
    "黄河东路",
    "泰山北路",
    "泰山南路",
    "庐山南路",
    "岷江西路",
    "珠江西路",
    "华山北路",
    "天山南路",
    "嵩山路",
    "衡山路",
    "峨眉山路",
    "青衣江路",
    "沱江路",
]

SURNAMES = list(
    "王李张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏"
    "薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易"
    "常武乔贺赖龚文"
)
GIVEN = list(
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志强文斌玉兰红梅云飞海燕俊杰子涵"
    "浩然欣怡梓萱雨桐思远嘉怡宇轩晨曦佳琪一诺梓涵"
)
# GB 3304 codes with rough Sichuan shares.
ETHNICITIES = [("01", 0.955), ("07", 0.02), ("04", 0.01), ("33", 0.005), ("03", 0.005), ("15", 0.005)]

# Business-scope items: code, text in registrations, the department whose permit it needs ("" if none).
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

TRADE_NAMES = list("鑫源恒泰华盛金鼎宏达瑞丰顺发天成永安德润博通嘉禾汇丰富康兴旺锦程长青")
INDUSTRIES = [
    "食品",
    "餐饮管理",
    "机械制造",
    "商贸",
    "建筑工程",
    "运输",
    "科技",
    "农业开发",
    "医药",
    "装饰工程",
    "重型装备",
]

# "27 certificates in one" (多证合一): registrations merged into the business licence.
REGISTRATION_ITEMS = [
    "organization_code",
    "tax_registration",
    "social_insurance_registration",
    "statistics_registration",
    "customs_declaration",
    "foreign_trade_operator",
    "seal_filing",
    "employment_registration",
    "housing_fund_registration",
    "quarantine_registration",
    "electronic_port",
    "enterprise_annual_report",
]

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
ABNORMAL_REASONS = [
    "通过登记的住所或者经营场所无法联系",
    "未按规定期限公示年度报告",
    "未在责令期限内公示有关企业信息",
    "公示企业信息隐瞒真实情况、弄虚作假",
]
SERIOUS_REASONS = [
    "被列入经营异常名录届满3年仍未履行相关义务",
    "提交虚假材料取得公司变更登记",
    "拒不履行生效法律文书确定义务",
    "组织策划传销",
]
MEASURES = {
    "restrict_procurement": "限制参与政府采购",
    "restrict_bidding": "限制参与招标投标",
    "restrict_honours": "限制授予荣誉称号",
    "restrict_loans": "限制融资贷款",
    "restrict_subsidies": "限制申请财政补贴",
    "restrict_high_consumption": "限制高消费",
}
MEASURE_BY_TEXT = {v: k for k, v in MEASURES.items()}

ENTITY_TYPES = {  # credit-code prefix → (catalogue type, native label)
    "91": ("company", "有限责任公司"),
    "92": ("individual_business", "个体工商户"),
    "93": ("farmer_coop", "农民专业合作社"),
}
ENTITY_LABELS = {label: kind for kind, label in ENTITY_TYPES.values()}
ENTITY_STATUS = {"active": "存续", "revoked": "吊销", "cancelled": "注销", "moved_out": "迁出"}
ENTITY_STATUS_BY_LABEL = {v: k for k, v in ENTITY_STATUS.items()}
# Public security's person status codes (人员状态).
PERSON_STATUS = {"registered": "1", "moved_out": "2", "deceased": "3"}
PERSON_STATUS_BY_CODE = {v: k for k, v in PERSON_STATUS.items()}

# DESIGN.md: of 340,000 entities, 2,800,000 credit records; 1,702 on the abnormal list,
# 481 later removed; 1,221 under joint restrictions (serious-violation list).
CITY_ENTITIES = 340_000
CITY_CREDIT_RECORDS = 2_800_000
ABNORMAL_SHARE = 1702 / CITY_ENTITIES
REMOVED_SHARE = 481 / 1702
SERIOUS_SHARE = 1221 / CITY_ENTITIES

# Licence types issued for business-scope items, and how their numbers start.
LICENCE_TYPES = {
    "food_sales": "food_business",
    "catering": "food_business",
    "food_production": "food_production",
    "drug_retail": "drug_business",
    "medical_device_ii": "medical_device_business",
    "road_freight": "road_transport",
    "road_passenger": "road_transport",
    "hazardous_chemicals": "hazardous_chemicals",
    "travel_agency": "travel_agency",
    "publication_retail": "publication_business",
    "internet_cafe": "internet_service",
    "private_training": "private_school",
}
LICENCE_PREFIX = {
    "food_business": "JY1",
    "food_production": "SC1",
    "drug_business": "川AA",
    "medical_device_business": "川食药监械",
    "road_transport": "川交运管",
    "hazardous_chemicals": "川德危化经",
    "travel_agency": "L-SC-",
    "publication_business": "新出发",
    "internet_service": "网文",
    "private_school": "教民",
}
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
