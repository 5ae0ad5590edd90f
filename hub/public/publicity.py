"""Enforcement publicity pages (行政执法公示): decisions, officers and the power list.

Server-rendered HTML readable on a phone, and the same data as JSON for machines. Natural persons
are already masked on the feed (hub.supervision.publicity); nothing here reads them in clear.
Mounted on the public site as ``for path, handler in pages.routes(): site.add_get(path, handler)``.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from dataclasses import asdict

from aiohttp import web

from hub.cache.replica import ReplicaCache
from hub.governance.catalogue import CatalogueStore
from hub.officers import RESOURCE as OFFICERS
from hub.officers import valid_on
from hub.supervision.platform import SupervisionPlatform
from hub.supervision.powers import PowerItem
from hub.supervision.publicity import PublicityFeed
from hub.supervision.registry import CachedPowerList

CATEGORY_NAMES = {
    "licence": "行政许可",
    "penalty": "行政处罚",
    "coercive": "行政强制",
    "levy": "行政征收",
    "payment": "行政给付",
    "inspection": "行政检查",
    "confirmation": "行政确认",
    "reward": "行政奖励",
    "ruling": "行政裁决",
    "other": "其他行政权力",
}
_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0 auto;max-width:48rem;padding:0.8rem;line-height:1.5}}
nav a{{margin-right:1rem}} .card{{border:1px solid #ccc;border-radius:6px;padding:0.6rem;margin:0.6rem 0}}
.meta{{color:#555;font-size:0.9rem}} h1{{font-size:1.3rem}}
</style></head><body>
<nav><a href="/publicity/decisions">执法决定</a><a href="/publicity/officers">执法人员</a>
<a href="/publicity/powers">权力清单</a></nav>
<h1>{title}</h1>
{body}
<p class="meta">机读数据: <a href="{json}">{json}</a></p>
</body></html>"""


def hub_pages(
    cache: ReplicaCache, catalogue: CatalogueStore, platform: SupervisionPlatform, **options: Callable
) -> PublicityPages:
    """The pages over one hub process's cache and supervision state (``today=`` for another date)."""

    def name(code: str) -> str:
        department = catalogue.department(code)
        return department.name if department is not None else code

    def valid_officers(on: dt.date) -> list[dict]:
        return valid_on(cache.version(OFFICERS), on)

    return PublicityPages(platform.feed, valid_officers, CachedPowerList(cache).items, name, **options)


class PublicityPages:
    def __init__(
        self,
        feed: PublicityFeed,
        officers: Callable[[dt.date], list[dict]],  # those with a certificate valid on the date
        powers: Callable[[], list[PowerItem]],
        department_name: Callable[[str], str],
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date(),
    ) -> None:
        self._feed = feed
        self._officers = officers
        self._powers = powers
        self._name = department_name
        self._today = today

    def routes(self) -> list[tuple[str, Callable]]:
        return [
            ("/publicity/decisions", self.decisions),
            ("/publicity/decisions.json", self.decisions_json),
            ("/publicity/officers", self.officers),
            ("/publicity/officers.json", self.officers_json),
            ("/publicity/powers", self.powers),
            ("/publicity/powers.json", self.powers_json),
        ]

    def _decisions(self) -> list[dict]:
        return [{**asdict(d), "enforcing_body": self._name(d.department)} for d in self._feed.current(self._today())]

    def _officer_rows(self) -> list[dict]:
        rows = [
            {"name": o["name"], "certificate_no": o["cert_no"], "enforcing_body": self._name(o["department"])}
            for o in self._officers(self._today())
        ]
        return sorted(rows, key=lambda o: (o["enforcing_body"], o["certificate_no"]))

    def _power_rows(self, department: str) -> list[dict]:
        items = [i for i in self._powers() if i.status == "active" and (not department or i.department == department)]
        return [
            {
                "code": i.code,
                "name": i.name,
                "category": i.category,
                "enforcing_body": self._name(i.department),
                "legal_basis": i.legal_basis,
                "promised_days": i.promised_days,
                "steps": [s.name for s in i.steps],
                "major": i.major,
            }
            for i in sorted(items, key=lambda i: i.code)
        ]

    async def decisions(self, request: web.Request) -> web.Response:
        cards = [
            _card(
                f"{e['enforcing_body']} · {CATEGORY_NAMES.get(e['category'], e['category'])}",
                f"对象：{e['target']}" + (f"（{e['target_id']}）" if e["target_id"] else ""),
                f"决定：{e['decision']}",
                f"决定日期 {e['decided_on']} · 案件 {e['case_number']}",
            )
            for e in self._decisions()
        ]
        return _html("行政执法决定公示", cards or ["<p>暂无公示。</p>"], "/publicity/decisions.json")

    async def decisions_json(self, request: web.Request) -> web.Response:
        return web.json_response({"as_of": self._today().isoformat(), "decisions": self._decisions()})

    async def officers(self, request: web.Request) -> web.Response:
        cards = [_card(o["name"], f"执法证号 {o['certificate_no']}", o["enforcing_body"]) for o in self._officer_rows()]
        return _html("行政执法人员", cards or ["<p>暂无。</p>"], "/publicity/officers.json")

    async def officers_json(self, request: web.Request) -> web.Response:
        return web.json_response({"officers": self._officer_rows()})

    async def powers(self, request: web.Request) -> web.Response:
        rows = self._power_rows(request.query.get("department", ""))
        cards = [
            _card(
                f"{p['name']}（{p['code']}）",
                f"{p['enforcing_body']} · {CATEGORY_NAMES[p['category']]} · 承诺时限 {p['promised_days']} 个工作日",
                f"依据：{p['legal_basis']}",
                "流程：" + " → ".join(p["steps"]) + (" · 重大执法决定须法制审核" if p["major"] else ""),
            )
            for p in rows
        ]
        return _html(f"权力清单（{len(rows)} 项）", cards or ["<p>暂无。</p>"], "/publicity/powers.json")

    async def powers_json(self, request: web.Request) -> web.Response:
        return web.json_response({"items": self._power_rows(request.query.get("department", ""))})


def _card(title: str, *lines: str) -> str:
    body = "".join(f'<div class="meta">{html.escape(line)}</div>' for line in lines)
    return f'<div class="card"><strong>{html.escape(title)}</strong>{body}</div>'


def _html(title: str, parts: list[str], json_path: str) -> web.Response:
    page = _PAGE.format(title=html.escape(title), body="\n".join(parts), json=json_path)
    return web.Response(text=page, content_type="text/html", charset="utf-8")
