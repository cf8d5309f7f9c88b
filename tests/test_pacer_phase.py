"""Schedules of users that start together (issue 17): each with its own phase, their sends add up to the total rate
in every second, instead of bunching into one burst per period."""

from __future__ import annotations

import random

import pytest

from loadgen.workload.arrival_rate import Pacer


def sends_per_second(phases: list[float], rate: float, seconds: int) -> list[int]:
    times = [t for p in phases for t in Pacer(rate, start=0.0, phase=p).due(seconds - 1e-9)]
    return [sum(1 for t in times if s <= t < s + 1) for s in range(seconds)]


def test_users_started_together_send_at_the_total_rate_every_second() -> None:
    users, total = 1000, 150.0  # 0.15/s each: one send per user every 6.7 s
    rng = random.Random(1)
    spread = sends_per_second([rng.random() for _ in range(users)], total / users, 20)
    assert all(100 <= n <= 200 for n in spread), spread  # about 150 in every second
    bunched = sends_per_second([0.0] * users, total / users, 20)
    assert max(bunched) == users and bunched.count(0) > 10  # without phases: 1,000 at once, then silence


def test_phase_moves_the_first_slot_and_keeps_the_spacing() -> None:
    pacer = Pacer(10.0, start=5.0, phase=0.5)
    assert pacer.due(5.349) == pytest.approx([5.05, 5.15, 5.25])


@pytest.mark.parametrize("phase", [-0.1, 1.0])
def test_phase_outside_one_period_is_refused(phase: float) -> None:
    with pytest.raises(ValueError):
        Pacer(1.0, phase=phase)
