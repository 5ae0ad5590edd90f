"""The announcement feed (一公开) on the public site: search by credit code, a page per result,
JSON and Atom feeds, and each plan's published draw material. Natural persons are masked."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections import OrderedDict
from xml.sax.saxutils import escape as xml_escape

import orjson
from aiohttp import web

from hub.inspections.results import CITY, OUTCOME_TEXT
from hub.inspections.store import InspectionStore, material
from hub.public.site import Handler, PublicSite
from hub.records.masking import mask_value

PAGE = 50
RENDERED = 2048  # pages kept rendered (search results by credit code included)
_CODE = re.compile(r"^[0-9A-Z]{18}$")
_STYLE = """
body{font-family:system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC",sans-serif;margin:0;color:#222;
background:#f6f7f9}
header{background:#b71c1c;color:#fff;padding:12px 16px}header a{color:#fff;text-decoration:none}
main{max-width:720px;margin:0 auto;padding:12px}form{display:flex;gap:8px;margin:8px 0 16px}
input{flex:1;font-size:16px;padding:10px;border:1px solid #bbb;border-radius:6px}
button{font-size:16px;padding:10px 14px;border:0;border-radius:6px;background:#b71c1c;color:#fff}
.card{display:block;background:#fff;border-radius:8px;padding:12px;margin:8px 0;color:inherit;text-decoration:none;
box-shadow:0 1px 2px rgba(0,0,0,.08)}.meta{color:#666;font-size:14px}.outcome{font-weight:600}
dl{background:#fff;border-radius:8px;padding:12px}dt{color:#666;font-size:14px;margin-top:8px}dd{margin:2px 0 0}
"""


def public_name(credit_code: str, name: str) -> str:
    """An individual business (GB 32100 type 92) usually bears its owner's name: masked like a person."""
    return str(mask_value("name", name)) if credit_code.startswith("92") else name


def _copy(response: web.Response) -> web.Response:
    """A fresh response with the same body (an aiohttp response object is sent once)."""
    return web.Response(
        body=response.body, status=response.status, content_type=response.content_type, charset=response.charset
    )


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def _date(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, CITY).strftime("%Y-%m-%d")


def _public(r: dict) -> dict:
    return {
        "id": r["id"],
        "url": f"/results/{r['plan_id']}/{r['credit_code']}",
        "plan_id": r["plan_id"],
        "department": r["department"],
        "items": [i["name"] for i in r["items"]],
        "credit_code": r["credit_code"],
        "target_name": public_name(r["credit_code"], r["target_name"]),
        "inspected_on": r["inspected_on"],
        "published_on": _date(r["published_at_ms"]),
        "officers": r["officers"],
        "outcome": r["outcome"],
        "outcome_text": OUTCOME_TEXT[r["outcome"]],
    }


def _page(title: str, body: str) -> web.Response:
    text = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        '<header><a href="/"><strong>双随机、一公开 · 抽查结果公示</strong></a></header>'
        f"<main>{body}</main></body></html>"
    )
    return web.Response(text=text, content_type="text/html", charset="utf-8")


class InspectionFeed:
    def __init__(self, store: InspectionStore, department_names: dict[str, str]) -> None:
        self._store = store
        self._departments = department_names
        self._rendered: OrderedDict[str, tuple[tuple[int, ...], web.Response]] = OrderedDict()

    def mount(self, site: PublicSite) -> None:
        for path, handler in (
            ("/", self.index),
            ("/results/{plan_id}/{code}", self.detail),
            ("/feed.json", self.feed_json),
            ("/feed.atom", self.feed_atom),
            ("/plans/{plan_id}.json", self.plan_json),
        ):
            site.add_get(path, self._cached(handler))

    def _cached(self, handler: Handler) -> Handler:
        """Pages change only when the announcement topic does: a page is rendered once per store
        position, so citizens reading the feed cost the hub's event loop (and its verifications) little."""

        async def cached(request: web.Request) -> web.Response:
            position, key = self._store.positions(), request.path_qs
            hit = self._rendered.get(key)
            if hit is not None and hit[0] == position:
                self._rendered.move_to_end(key)
                return _copy(hit[1])
            response = await handler(request)
            self._rendered[key] = (position, response)
            if len(self._rendered) > RENDERED:
                self._rendered.popitem(last=False)
            return _copy(response)

        return cached

    def _department(self, code: str) -> str:
        return self._departments.get(code, code)

    def _results(self, code: str = "") -> list[dict]:
        return [_public(r) for r in self._store.published() if not code or r["credit_code"] == code]

    async def index(self, request: web.Request) -> web.Response:
        code = request.query.get("code", "").strip().upper()
        if code and not _CODE.match(code):
            found, note = [], "统一社会信用代码为18位数字或大写字母"
        else:
            found = self._results(code)[:PAGE]
            note = f"{code} 的抽查结果：{len(found)} 条" if code else "最新公示的抽查结果"
        cards = "".join(
            f'<a class="card result" href="{html.escape(r["url"])}">'
            f"<div><strong>{html.escape(r['target_name'])}</strong></div>"
            f'<div class="meta">{html.escape(r["credit_code"])} · '
            f"{html.escape(self._department(r['department']))}</div>"
            f'<div class="meta">{html.escape("、".join(r["items"]))} · {r["inspected_on"]}</div>'
            f'<div class="outcome">{html.escape(r["outcome_text"])}</div></a>'
            for r in found
        )
        form = (
            '<form method="get" action="/"><input name="code" placeholder="统一社会信用代码" '
            f'value="{html.escape(code)}" autocomplete="off"><button type="submit">查询</button></form>'
        )
        feeds = '<p class="meta">机器可读：<a href="/feed.json">JSON</a> · <a href="/feed.atom">Atom</a></p>'
        return _page("抽查结果公示", f"{form}<p>{html.escape(note)}</p>{cards or '<p>暂无结果</p>'}{feeds}")

    async def detail(self, request: web.Request) -> web.Response:
        result = self._store.result(request.match_info["plan_id"], request.match_info["code"])
        if result is None or not result["published_at_ms"]:
            raise web.HTTPNotFound(text="no published result here")
        r = _public(result)
        rows = [
            ("检查对象", r["target_name"]),
            ("统一社会信用代码", r["credit_code"]),
            ("检查部门", self._department(r["department"])),
            ("抽查事项", "、".join(r["items"])),
            ("检查日期", r["inspected_on"]),
            ("执法人员证号", "、".join(r["officers"])),
            ("检查结果", r["outcome_text"]),
            ("公示日期", r["published_on"]),
            ("抽查计划", r["plan_id"]),
        ]
        body = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in rows)
        link = f'<p class="meta"><a href="/plans/{html.escape(r["plan_id"])}.json">抽取过程（可复核）</a></p>'
        return _page(
            f"{r['target_name']} · 抽查结果",
            f'<h1 id="target">{html.escape(r["target_name"])}</h1><dl>{body}</dl>{link}',
        )

    async def feed_json(self, request: web.Request) -> web.Response:
        code = request.query.get("code", "").strip().upper()
        items = self._results(code)[: int(request.query.get("limit", "500"))]
        return web.json_response(
            {"version": "https://jsonfeed.org/version/1.1", "title": "抽查结果公示", "items": items},
            dumps=_dumps,
        )

    async def feed_atom(self, request: web.Request) -> web.Response:
        items = self._results()[:PAGE]
        updated = items[0]["published_on"] if items else "1970-01-01"
        entries = "".join(
            "<entry>"
            f"<id>urn:hub:inspection:{xml_escape(r['id'])}</id>"
            f"<title>{xml_escape(r['target_name'])}：{xml_escape(r['outcome_text'])}</title>"
            f'<link href="{xml_escape(r["url"])}"/>'
            f"<updated>{r['published_on']}T00:00:00+08:00</updated>"
            f"<summary>{xml_escape(r['credit_code'])} · {xml_escape(self._department(r['department']))} · "
            f"{xml_escape('、'.join(r['items']))} · {r['inspected_on']} · "
            f"{xml_escape('、'.join(r['officers']))}</summary>"
            "</entry>"
            for r in items
        )
        text = (
            '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<id>urn:hub:inspections</id><title>抽查结果公示</title><updated>{updated}T00:00:00+08:00</updated>"
            f"{entries}</feed>"
        )
        return web.Response(text=text, content_type="application/atom+xml", charset="utf-8")

    async def plan_json(self, request: web.Request) -> web.Response:
        published = material(self._store, request.match_info["plan_id"])
        if published is None:
            raise web.HTTPNotFound(text="no such plan")
        if published["draw"] is not None:
            targets = [{**t, "name": public_name(t["credit_code"], t["name"])} for t in published["draw"]["targets"]]
            published["draw"] = {**published["draw"], "targets": targets}
        return web.json_response(published, dumps=_dumps)
