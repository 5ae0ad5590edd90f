"""The power list (权力清单): items, their categories, process steps and time limits.

An item is a record of the ``power.item`` catalogue resource (published by the Justice Bureau like
any other resource), so every replica holds the list in its cache. Its steps are written
``name:working days``; a name ending in ``?`` is optional (``legal_review?``: required only before
a major decision). The seed list (:data:`SEED_PATH`) derives each step's limit from the item's
promised days and its category's process.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SEED_PATH = Path(__file__).with_name("power_list.toml")
Category = Literal[
    "licence", "penalty", "coercive", "levy", "payment", "inspection", "confirmation", "reward", "ruling", "other"
]
# The code letters of the categories in the province's item codes (行政许可 XK, 行政处罚 CF, ...).
CATEGORY_CODES: dict[str, str] = {
    "licence": "XK",
    "penalty": "CF",
    "coercive": "QZ",
    "levy": "ZS",
    "payment": "GF",
    "inspection": "JC",
    "confirmation": "QR",
    "reward": "JL",
    "ruling": "CJ",
    "other": "QT",
}
# Decisions of these categories are published (行政执法公示); the others are not enforcement decisions.
PUBLISHED_CATEGORIES = frozenset({"licence", "penalty"})
LEGAL_REVIEW = "legal_review"
DECIDE = "decide"
# Steps outside the process: publishing a decision, and revoking it (which withdraws the publication).
PUBLISH, REVOKE = "publish", "revoke"


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    limit_days: int
    optional: bool = False

    def text(self) -> str:
        return f"{self.name}{'?' if self.optional else ''}:{self.limit_days}"

    @classmethod
    def parse(cls, text: str) -> Step:
        name, _, days = text.partition(":")
        return cls(name.rstrip("?"), int(days), name.endswith("?"))


@dataclass(frozen=True, slots=True)
class PowerItem:
    code: str
    department: str
    name: str
    category: str
    legal_basis: str
    promised_days: int
    steps: tuple[Step, ...]
    major: bool = False
    status: str = "active"

    def index(self, step: str) -> int:
        """The step's position in the process, or -1."""
        for i, s in enumerate(self.steps):
            if s.name == step:
                return i
        return -1

    @property
    def final(self) -> int:
        """Index of the last required step: the case is closed when it is reported."""
        return max(i for i, s in enumerate(self.steps) if not s.optional)

    def record(self) -> dict:
        return {
            "code": self.code,
            "department": self.department,
            "name": self.name,
            "category": self.category,
            "legal_basis": self.legal_basis,
            "promised_days": self.promised_days,
            "steps": [s.text() for s in self.steps],
            "major": self.major,
            "status": self.status,
        }

    @classmethod
    def from_record(cls, r: dict) -> PowerItem:
        return cls(
            r["code"],
            r["department"],
            r["name"],
            r["category"],
            r["legal_basis"],
            int(r["promised_days"]),
            tuple(Step.parse(s) for s in r["steps"]),
            bool(r.get("major")),
            r.get("status") or "active",
        )


def process_steps(process: list[tuple[str, float]], promised_days: int) -> tuple[Step, ...]:
    """A category's process with limits as shares of the promised days (at least one day each)."""
    return tuple(
        Step(name.rstrip("?"), max(1, round(share * promised_days)), name.endswith("?")) for name, share in process
    )


def item_code(department: str, category: str, n: int) -> str:
    return f"{department}.{CATEGORY_CODES[category]}{n:03d}"


def load_seed(path: Path = SEED_PATH) -> list[PowerItem]:
    with path.open("rb") as f:
        seed = tomllib.load(f)
    processes = seed["processes"]
    items = []
    for dept in seed["departments"]:
        counts: dict[str, int] = {}
        for category, name, basis, days, *flags in dept["items"]:
            counts[category] = counts.get(category, 0) + 1
            items.append(
                PowerItem(
                    item_code(dept["code"], category, counts[category]),
                    dept["code"],
                    name,
                    category,
                    basis,
                    days,
                    process_steps(processes[category], days),
                    "major" in flags,
                )
            )
    return items


def seed_processes(path: Path = SEED_PATH) -> dict[str, list[tuple[str, float]]]:
    with path.open("rb") as f:
        return {k: [tuple(s) for s in v] for k, v in tomllib.load(f)["processes"].items()}
