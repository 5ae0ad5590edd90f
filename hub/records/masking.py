"""Masking of sensitive values for callers whose grant does not cover them unmasked.

Styles: ``id`` keeps the division code and the last four characters (510603********1234); ``name``
keeps the first character (张**); ``address`` keeps the administrative part up to the district or
county; ``all`` hides the value entirely.
"""

from __future__ import annotations

_ADMIN_HEAD = 12  # province + city + district/county fit in the first 12 characters


def mask_value(style: str, value: object) -> object:
    if value is None:
        return None
    if isinstance(value, list):
        return ["****" for _ in value]
    text = str(value)
    if style == "id":
        return text[:6] + "*" * max(0, len(text) - 10) + text[-4:] if len(text) > 10 else "*" * len(text)
    if style == "name":
        return text[:1] + "*" * (len(text) - 1)
    if style == "address":
        head = text[:_ADMIN_HEAD]
        cut = max(head.rfind("区"), head.rfind("县"), head.rfind("市"))
        return (text[: cut + 1] if cut >= 0 else text[:6]) + "****"
    return "****"


def mask_record(record: dict[str, object], masks: dict[str, str]) -> dict[str, object]:
    """A copy of ``record`` with each field in ``masks`` (field → style) masked."""
    if not masks:
        return record
    return {k: mask_value(masks[k], v) if k in masks else v for k, v in record.items()}
