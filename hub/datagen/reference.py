"""What realistic synthetic records are drawn from: places, roads, names, trade names, reasons,
and the city's shares from DESIGN.md. The code tables that connectors share with the generator
(divisions, statuses, labels) are in :mod:`hub.records.reference`."""

from __future__ import annotations

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
