"""Partition-key multi-tenancy: which tenant each request goes to, skewed by a Zipf law, and its traffic bucket.

Tenant 0 is the hottest: tenant of rank r (r = tenant + 1) gets weight 1/r^s (s = --tenant-zipf; 0 is uniform).
Buckets by rank, so they read the same whatever s is: hot = the top 10% of tenants (at least one), warm = the rest
of the top half, cold = the bottom half.
"""

from __future__ import annotations

import math

import numpy as np

BUCKETS = ("hot", "warm", "cold")


def bucket(tenant: int, tenants: int) -> str:
    rank = tenant + 1
    if rank <= max(1, math.ceil(0.1 * tenants)):
        return "hot"
    if rank <= max(1, math.ceil(0.5 * tenants)):
        return "warm"
    return "cold"


class TenantSampler:
    def __init__(self, tenants: int, zipf: float, rng: np.random.Generator) -> None:
        self.tenants = tenants
        weights = 1.0 / np.arange(1, tenants + 1, dtype=np.float64) ** zipf
        self.cdf = np.cumsum(weights / weights.sum())
        self.rng = rng

    def probabilities(self) -> list[float]:
        return np.diff(self.cdf, prepend=0.0).tolist()

    def pick(self) -> int:
        return min(int(np.searchsorted(self.cdf, self.rng.random(), side="right")), self.tenants - 1)
