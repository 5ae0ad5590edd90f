"""The inspection-item list (随机抽查事项清单), seeded from ``hub/catalogue/inspection_items.toml``."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ITEMS_PATH = Path(__file__).resolve().parent.parent / "catalogue" / "inspection_items.toml"


class InspectionItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    department: str
    name: str
    legal_basis: str
    checks: str
    method: str
    target_kind: Literal["market_entity", "licence_holder"]
    licence_type: str = ""
    default_ratio: float = Field(gt=0, le=1)
    field: str

    @model_validator(mode="after")
    def _licence(self) -> InspectionItem:
        if (self.target_kind == "licence_holder") != bool(self.licence_type):
            raise ValueError(f"item {self.id}: licence_type is required exactly for licence_holder items")
        return self


def load_items(path: Path = ITEMS_PATH) -> dict[str, InspectionItem]:
    with path.open("rb") as f:
        items = [InspectionItem.model_validate(x) for x in tomllib.load(f)["items"]]
    return {i.id: i for i in items}
