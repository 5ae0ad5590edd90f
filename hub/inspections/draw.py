"""The draw: which targets and officers a plan gets, from its published material alone.

Pure on purpose (hashing only, no hub imports): ``docs/inspections.md`` specifies every step so an
independent implementation in another language reproduces the same targets and officers, and
``hub draws verify`` runs this module on what the public feed published.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

FORMAT = "hub.inspections.draw.v1"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: object) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8 (RFC 8785 for the integers and strings we use)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def plan_digest(plan: Mapping) -> str:
    return sha256_hex(canonical_json(dict(plan)))


def target_pool_digest(credit_codes: Iterable[str]) -> str:
    """SHA-256 of each code followed by a newline, codes in ascending byte order (= code-point order in UTF-8)."""
    codes = sorted(credit_codes)
    return sha256_hex(("\n".join(codes) + "\n").encode() if codes else b"")


def officer_line(officer: Mapping) -> str:
    return "\t".join((officer["cert_no"], officer["department"], officer["level"], officer["field"]))


def officer_pool_digest(officers: Iterable[Mapping]) -> str:
    """SHA-256 of one tab-separated line per officer (certificate, department, level, field), by certificate."""
    ordered = sorted(officers, key=lambda o: o["cert_no"])
    return sha256_hex(b"".join(officer_line(o).encode() + b"\n" for o in ordered))


def seed_commitment(plan_id: str, seed_hex: str) -> str:
    """SHA-256 of the plan id, a zero byte and the 32 seed bytes: binds the seed to this plan."""
    return sha256_hex(plan_id.encode() + b"\x00" + bytes.fromhex(seed_hex))


def beacon_digest(key: bytes, value: bytes) -> str:
    """The digest of one record of the announcement topic: SHA-256 of key, a zero byte, value."""
    return sha256_hex(key + b"\x00" + value)


def root(plan_hex: str, targets_hex: str, officers_hex: str, seed_hex: str, beacon_hex: str) -> bytes:
    """Everything the outcome depends on, in one 32-byte value."""
    text = "\n".join((FORMAT, plan_hex, targets_hex, officers_hex, seed_hex, beacon_hex))
    return hashlib.sha256(text.encode()).digest()


def sample_size(pool_size: int, ratio_ppm: int, count: int) -> int:
    """``count`` if set, else ⌈pool × ppm / 10⁶⌉ in integers; never more than the pool."""
    wanted = count if count > 0 else (pool_size * ratio_ppm + 999_999) // 1_000_000
    return min(pool_size, wanted)


@dataclass(frozen=True)
class Assignment:
    credit_code: str
    officers: tuple[str, ...]


def _shuffled_prefix(root_bytes: bytes, label: bytes, items: list[str], n: int) -> list[str]:
    """The first ``n`` items of a partial Fisher–Yates shuffle driven by SHA-256(root ‖ label ‖ i):
    for i in 0..n-1, j = i + (the hash as a big-endian integer mod (len - i)), swap items i and j.
    Hashes only n values, so a draw of 300 from 300,000 costs 300 hashes."""
    out = list(items)
    n = min(n, len(out))
    for i in range(n):
        h = int.from_bytes(hashlib.sha256(root_bytes + label + i.to_bytes(8, "big")).digest(), "big")
        j = i + h % (len(out) - i)
        out[i], out[j] = out[j], out[i]
    return out[:n]


def select_targets(root_bytes: bytes, credit_codes: Sequence[str], n: int) -> list[str]:
    """``n`` codes of the pool (in ascending byte order), shuffled with the label "target" ‖ 0x00; in draw order."""
    return _shuffled_prefix(root_bytes, b"target\x00", sorted(credit_codes), n)


def assign_officers(
    root_bytes: bytes,
    targets: Sequence[str],
    officers: Sequence[Mapping],
    per_target: int,
    conflicts: Mapping[str, frozenset[str]],
) -> list[Assignment]:
    """For each target, ``per_target`` officers not in conflict with it (in ascending certificate order),
    shuffled with the label "officer" ‖ 0x00 ‖ code ‖ 0x00; fewer if fewer are eligible."""
    certs = sorted(o["cert_no"] for o in officers)
    out = []
    for code in targets:
        excluded = conflicts.get(code, frozenset())
        eligible = [c for c in certs if c not in excluded] if excluded else certs
        label = b"officer\x00" + code.encode() + b"\x00"
        out.append(Assignment(code, tuple(_shuffled_prefix(root_bytes, label, eligible, per_target))))
    return out


def conflict_map(pairs: Iterable[Sequence[str]]) -> dict[str, frozenset[str]]:
    """``[[credit_code, cert_no], ...]`` → code → certificates excluded for it."""
    out: dict[str, set[str]] = {}
    for code, cert in pairs:
        out.setdefault(code, set()).add(cert)
    return {code: frozenset(certs) for code, certs in out.items()}


def digests(material: Mapping) -> tuple[str, str, str]:
    """(plan, target pool, officer pool) digests of published material."""
    return (
        plan_digest(material["plan"]),
        target_pool_digest(material["target_pool"]),
        officer_pool_digest(material["officer_pool"]),
    )


def run(material: Mapping, digested: tuple[str, str, str] | None = None) -> tuple[str, list[Assignment]]:
    """Re-runs the draw of published material: (root hex, assignments in draw order)."""
    plan, draw = material["plan"], material["draw"]
    key = root(*(digested or digests(material)), draw["seed"], draw["beacon"])
    pool = material["target_pool"]
    n = sample_size(len(pool), plan["ratio_ppm"], plan["count"])
    targets = select_targets(key, pool, n)
    return key.hex(), assign_officers(
        key, targets, material["officer_pool"], plan["officers_per_target"], conflict_map(draw["conflicts"])
    )


def verify(material: Mapping) -> list[str]:
    """What differs between the published draw and a re-run from the published material; empty if nothing."""
    plan, commitment, draw = material["plan"], material["commitment"], material.get("draw")
    problems = []
    digested = digests(material)
    committed_digests = (commitment["plan_digest"], commitment["target_pool_digest"], commitment["officer_pool_digest"])
    for what, actual, committed in zip(
        ("plan", "target pool", "officer pool"), digested, committed_digests, strict=True
    ):
        if actual != committed:
            problems.append(
                f"{what}: digest {actual[:16]}… differs from the one committed before the draw ({committed[:16]}…)"
            )
    if draw is None:
        return [*problems, "draw: the plan has not been drawn yet"]
    if seed_commitment(plan["id"], draw["seed"]) != commitment["seed_commitment"]:
        problems.append("seed: the revealed seed does not match the commitment published before the draw")
    key_hex, rerun = run(material, digested)
    if key_hex != draw["root"]:
        problems.append(
            f"root: re-computed {key_hex[:16]}… from plan, pools, seed and beacon; published {draw['root'][:16]}…"
        )
    published = {t["credit_code"]: tuple(t["officers"]) for t in draw["targets"]}
    again = {a.credit_code: a.officers for a in rerun}
    missing, extra = sorted(set(again) - set(published)), sorted(set(published) - set(again))
    if missing or extra:
        problems.append(
            f"targets: {len(extra)} published but not drawn by the re-run ({', '.join(extra[:3])}), "
            f"{len(missing)} drawn by the re-run but not published ({', '.join(missing[:3])})"
        )
    differing = [code for code in sorted(set(published) & set(again)) if published[code] != again[code]]
    for code in differing[:3]:
        problems.append(f"officers of {code}: published {list(published[code])}, re-run {list(again[code])}")
    if len(differing) > 3:
        problems.append(f"officers: {len(differing) - 3} more targets differ")
    return problems
