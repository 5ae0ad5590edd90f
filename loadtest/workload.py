"""What the load sends: keys and cases drawn from the same seeded generator as the loaded data.

A configurable share of keys are misses (well-formed, but nobody has them) and a share are invalid
(a wrong check character), so the hub's miss and rejection paths carry load too.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from hub.datagen.city import CitySize, credit_codes, resident_ids
from hub.v1 import cases_pb2, common_pb2

# The reported 2017 volume of administrative cases of Deyang and its six counties.
CITY_YEAR_CASES = 566_547

# City-year case types with their evidence items (each at least four verifications), by share.
CITY_YEAR_MIX = (("business_licence_change", 0.6), ("food_business_permit", 0.4))

LEGAL = common_pb2.PURPOSE_LEGAL_BASIS


@cache
def _keys(seed: int, residents: int, entities: int) -> tuple[list[str], list[str]]:
    return resident_ids(seed, residents), credit_codes(seed, entities)


def _corrupt(key: str) -> str:
    """The same key with a wrong check character."""
    last = key[-1]
    return key[:-1] + ("0" if last != "0" else "1")


@dataclass(frozen=True)
class KeyKind:
    miss: bool = False
    invalid: bool = False


class Workload:
    """Keys for one Locust process. Callers pass their own :class:`random.Random`, so each user
    draws a reproducible sequence."""

    def __init__(self, seed: int, size: CitySize, miss_share: float = 0.05, invalid_share: float = 0.01) -> None:
        if not 0 <= miss_share + invalid_share <= 1:
            raise ValueError("miss_share + invalid_share must be between 0 and 1")
        self.seed = seed
        self.size = size
        self.miss_share = miss_share
        self.invalid_share = invalid_share
        self.residents, self.entities = _keys(seed, size.residents, size.entities)
        self._strangers = resident_ids(seed + 1_000_003, 10_000)  # not in the city's data

    def kind(self, rng: random.Random) -> KeyKind:
        r = rng.random()
        return KeyKind(
            invalid=r < self.invalid_share, miss=self.invalid_share <= r < self.invalid_share + self.miss_share
        )

    def resident(self, rng: random.Random, kind: KeyKind = KeyKind()) -> str:
        if kind.invalid:
            return _corrupt(self.residents[rng.randrange(len(self.residents))])
        if kind.miss:
            return self._strangers[rng.randrange(len(self._strangers))]
        return self.residents[rng.randrange(len(self.residents))]

    def entity(self, rng: random.Random) -> str:
        return self.entities[rng.randrange(len(self.entities))]


class CaseFeed:
    """The city year's cases in a fixed order, handed out in batches; safe across greenlets and threads.
    With ``years`` > 1, the next year's ``per_year`` cases follow (numbered and dated in that year)."""

    def __init__(self, workload: Workload, per_year: int = CITY_YEAR_CASES, year: int = 2017, years: int = 1) -> None:
        self.workload = workload
        self.per_year = per_year
        self.total = per_year * years
        self.year = year
        self._next = itertools.count()
        self._lock = threading.Lock()
        types, weights = zip(*CITY_YEAR_MIX, strict=True)
        self._types, self._weights = types, weights

    def case(self, i: int) -> cases_pb2.SubmitRequest:
        rng = random.Random(i * 7919 + self.workload.seed)
        case_type = rng.choices(self._types, self._weights)[0]
        year, n = self.year + i // self.per_year, i % self.per_year
        day = dt.date(year, 1, 1) + dt.timedelta(days=n * 365 // self.per_year)
        params = {"legal_rep": self.workload.resident(rng)} if case_type == "business_licence_change" else {}
        return cases_pb2.SubmitRequest(
            case_number=f"DY-{year}-{n:07d}",
            case_type=case_type,
            applicant=self.workload.entity(rng),
            date=day.isoformat(),
            purpose=LEGAL,
            params=params,
        )

    def take(self, n: int) -> list[cases_pb2.SubmitRequest]:
        with self._lock:
            numbers = [i for i in itertools.islice(self._next, n) if i < self.total]
        return [self.case(i) for i in numbers]

    def __iter__(self) -> Iterator[cases_pb2.SubmitRequest]:
        return (self.case(i) for i in range(self.total))
