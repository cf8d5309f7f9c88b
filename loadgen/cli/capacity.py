"""``loadgen capacity``: the highest open-model rate that holds a p99 SLO (and a recall floor, an error ceiling).

The search is a pure function of a ``measure(rate) -> Measurement`` callable, so it is tested on synthetic curves;
``loadgen capacity`` gives it short open-model runs (one Locust run per step, like a sweep level) against one server
and collection. A rate holds when every store call row's p99 is within the SLO, the failed share and recall are
within their bounds when given, and the schedule was kept (at most ``MAX_DROPPED_SHARE`` of the sends dropped).

1. Bracket: from ``start``, multiply by ``growth`` while the rate holds, divide while it does not, until one rate
   that holds and one that does not are known (or ``max_rate`` holds, or nothing down to ``min_rate`` does).
2. Bisect between them until the bracket is narrower than ``tolerance`` of its low end, or the step budget is spent.
3. Stop early when the generator saturated: the step measured the generator, so a higher rate proves nothing.
The answer is the highest rate that held; the steps tried are kept in order with why each failed.

With ``--max-index-lag-s`` the rate searched for is an insert stream's (``--stream-rates insert=R`` with
``--ingest-readiness``, beside the searches of ``--arrival-rate`` or the closed model): a rate holds when the index
lag (``loadgen.stats.ingest``) stays within the bound, the stream dropped no more than ``MAX_DROPPED_SHARE`` of its
sends, and the store calls hold the SLO as above.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from loadgen.config.values import timespan_s
from loadgen.report import cost
from loadgen.stats import ingest
from loadgen.stats.rounds import spread

FORMAT = "milvus-loadgen/capacity/v1"
MAX_DROPPED_SHARE = 0.01  # an open model that dropped more than this did not hold its rate


@dataclass(frozen=True)
class Measurement:
    rate: float  # asked for
    p99_ms: float  # the worst p99 over the run's store call rows
    error_rate: float
    recall: float | None = None  # the lowest mean recall over the rows that measured it
    dropped_share: float = 0.0
    achieved_rate: float = 0.0
    generator_saturated: bool = False
    index_lag_s: float | None = None  # the run's largest index lag (--ingest-readiness), None when not measured


@dataclass(frozen=True)
class Slo:
    p99_ms: float
    min_recall: float | None = None
    max_error_rate: float | None = None
    max_index_lag_s: float | None = None

    def judge(self, m: Measurement) -> list[str]:
        """Why ``m`` does not hold (empty: it holds)."""
        why = []
        if not m.p99_ms <= self.p99_ms:
            why.append(f"p99 {m.p99_ms:.2f} ms > {self.p99_ms:g} ms")
        if self.max_error_rate is not None and m.error_rate > self.max_error_rate:
            why.append(f"errors {m.error_rate:.2%} > {self.max_error_rate:.2%}")
        if self.min_recall is not None and (m.recall is None or m.recall < self.min_recall):
            why.append("no recall measured" if m.recall is None else f"recall {m.recall:.4f} < {self.min_recall:g}")
        if self.max_index_lag_s is not None and (m.index_lag_s is None or m.index_lag_s > self.max_index_lag_s):
            if m.index_lag_s is None:
                why.append("no index lag measured")
            elif math.isinf(m.index_lag_s):
                why.append("nothing indexed within the step: its index lag only grew")
            else:
                why.append(f"index lag {m.index_lag_s:.2f} s > {self.max_index_lag_s:g} s")
        if m.dropped_share > MAX_DROPPED_SHARE:
            why.append(f"{m.dropped_share:.1%} of sends dropped")
        return why


@dataclass(frozen=True)
class Step:
    measurement: Measurement
    holds: bool
    why: list[str]


@dataclass
class Outcome:
    answer: float | None  # the highest rate that held; None when none did
    bracket: tuple[float | None, float | None]  # (highest that held, lowest that did not)
    stopped: str  # the stop rule that ended the search
    steps: list[Step] = field(default_factory=list)

    def to_dict(self, slo: Slo) -> dict[str, Any]:
        return {
            "format": FORMAT, "slo": asdict(slo), "answer": self.answer, "bracket": list(self.bracket),
            "stopped": self.stopped,
            "steps": [{**asdict(s.measurement), "holds": s.holds, "why": s.why} | _unbounded_lag(s.measurement)
                      for s in self.steps],
        }  # fmt: skip


def _unbounded_lag(m: Measurement) -> dict[str, Any]:
    """A step whose writes the index never took has no index lag to write down (JSON has no infinity): null, with
    ``why`` saying so."""
    return {"index_lag_s": None} if m.index_lag_s is not None and math.isinf(m.index_lag_s) else {}


def search(
    measure: Callable[[float], Measurement],
    slo: Slo,
    *,
    start: float,
    growth: float = 2.0,
    tolerance: float = 0.1,
    max_steps: int = 8,
    max_rate: float = math.inf,
    min_rate: float = 1.0,
) -> Outcome:
    steps: list[Step] = []
    lo: float | None = None
    hi: float | None = None

    def tried(rate: float) -> Step:
        m = measure(rate)
        why = slo.judge(m)
        steps.append(Step(m, not why, why))
        return steps[-1]

    rate, stopped = min(start, max_rate), ""
    while not stopped:
        if lo is not None and hi is not None and hi - lo <= tolerance * lo:
            stopped = f"bracket within {tolerance:.0%}"
            break
        if len(steps) >= max_steps:
            stopped = f"step budget ({max_steps}) spent"
            break
        bracketing = lo is None or hi is None
        if lo is not None and hi is not None:
            rate = _midpoint(lo, hi)
        step = tried(rate)
        lo, hi = (rate, hi) if step.holds else (lo, rate)
        if step.measurement.generator_saturated:  # the step measured the generator: higher rates prove nothing
            stopped = f"the generator saturated at {rate:g} req/s: add --processes or workers to go higher"
        elif bracketing and step.holds and hi is None:
            if rate >= max_rate:
                stopped = f"--max-rate {max_rate:g} req/s held"
            rate = min(rate * growth, max_rate)
        elif bracketing and not step.holds and lo is None:
            if rate / growth < min_rate:
                stopped = f"no rate down to {min_rate:g} req/s held"
            rate = rate / growth
    return Outcome(lo, (lo, hi), stopped, steps)


def _midpoint(lo: float, hi: float) -> float:
    """The bracket's middle, rounded to a readable rate (whole req/s when the bracket is that wide)."""
    mid = (lo + hi) / 2
    return float(round(mid)) if hi - lo >= 4 and lo < round(mid) < hi else round(mid, 2)


def measurement(results: dict[str, Any], rate: float, *, streams: bool = False) -> Measurement:
    """One step's ``results.json`` as what the SLO judges; ``streams``: the rate is the streams' (their drops)."""
    rows = [r for r in results.get("requests", []) if r.get("successes", r.get("requests"))]
    recall = [r["mean"] for r in (results.get("recall") or {}).values() if isinstance(r.get("mean"), int | float)]
    ol = results.get("open_loop") or {}
    intended = ol.get("intended") or 0
    if streams:
        kinds = [c for k, c in (ol.get("by_type") or {}).items() if k.endswith("[stream]")]
        ol = {"intended": sum(c.get("intended", 0) for c in kinds), "dropped": sum(c.get("dropped", 0) for c in kinds),
              "achieved_rate": 0.0}  # fmt: skip
        intended = ol["intended"]
    return Measurement(
        rate=rate,
        p99_ms=max((float(r["p99_ms"]) for r in rows), default=math.inf),  # nothing succeeded: nothing held
        error_rate=float(results.get("totals", {}).get("fail_ratio", 0.0)),
        recall=min(recall) if recall else None,
        dropped_share=(ol.get("dropped", 0) / intended) if intended else 0.0,
        achieved_rate=float(ol.get("achieved_rate", 0.0)),
        generator_saturated=bool((results.get("generator") or {}).get("saturated")),
        index_lag_s=ingest.max_lag_s(results.get("ingest")),
    )


def over_rounds(rounds: list[Measurement]) -> Measurement:
    """A step measured in several rounds, as the SLO judges it: each figure's median over the rounds
    (``loadgen.stats.rounds``), a saturated generator in any round counted."""
    if len(rounds) == 1:
        return rounds[0]

    def median(values: list[float]) -> float:
        return float(spread(values)["median"])

    recalls = [m.recall for m in rounds if m.recall is not None]
    return Measurement(
        rate=rounds[0].rate, p99_ms=median([m.p99_ms for m in rounds]),
        error_rate=median([m.error_rate for m in rounds]), recall=median(recalls) if recalls else None,
        dropped_share=median([m.dropped_share for m in rounds]),
        achieved_rate=median([m.achieved_rate for m in rounds]),
        generator_saturated=any(m.generator_saturated for m in rounds),
        index_lag_s=median(lags) if (lags := [m.index_lag_s for m in rounds if m.index_lag_s is not None]) else None,
    )  # fmt: skip


def step_seconds(rate: float, min_samples: int, min_seconds: float) -> float:
    """Long enough for a stable p99: at least ``min_samples`` calls (p99 then rests on min_samples/100 of them)."""
    return max(min_seconds, math.ceil(min_samples / rate))


def seconds(text: str) -> float:
    """A Locust run time ("20s", "5m", "1h30m", "90") in seconds; ValueError when it is not one."""
    try:
        return timespan_s(text)
    except ValueError:
        raise ValueError(f"not a run time: {text!r}") from None


def add_arguments(cap: Any) -> None:
    """``loadgen capacity``'s own options (it also takes ``loadgen run``'s)."""
    g = cap.add_argument_group("capacity search")
    g.add_argument("--slo-p99-ms", type=float, required=True, help="the p99 every store call must hold (ms)")
    g.add_argument("--min-recall", type=float, help="and this mean recall (needs --dataset)")
    g.add_argument("--max-error-rate", type=float, help="and at most this share of failed calls, e.g. 0.01")
    g.add_argument(
        "--max-index-lag-s", type=float,
        help="search the insert rate instead (--stream-rates insert=R, --ingest-readiness) whose index lag stays "
        "within this many seconds while searches hold --slo-p99-ms",
    )  # fmt: skip
    g.add_argument("--start-rate", type=float, default=50.0, help="first rate tried, req/s (default 50)")
    g.add_argument("--max-rate", type=float, default=math.inf, help="never try above this rate (default: no limit)")
    g.add_argument("--growth", type=float, default=2.0, help="bracketing factor between rates (default 2)")
    g.add_argument("--tolerance", type=float, default=0.1, help="stop when the bracket is this narrow (default 0.1)")
    g.add_argument("--max-steps", type=int, default=8, help="at most this many runs (default 8)")
    g.add_argument(
        "--min-samples", type=int, default=1000,
        help="each step runs long enough for this many calls (default 1000; -t is the shortest step)",
    )  # fmt: skip
    cost.add_arguments(cap)


def check_arguments(args: Any) -> Slo:
    """One-line errors for what the options alone show is wrong, before anything starts."""
    from loadgen.errors import LoadgenError

    if args.sweep_users or args.sweep_rates:
        raise LoadgenError("loadgen capacity chooses its own rates: drop --sweep-users/--sweep-rates")
    if not args.slo_p99_ms > 0:
        raise LoadgenError(f"--slo-p99-ms must be positive, got {args.slo_p99_ms}")
    if args.min_recall is not None and not 0 < args.min_recall <= 1:
        raise LoadgenError(f"--min-recall must be in (0, 1], got {args.min_recall}")
    if args.min_recall is not None and not args.dataset:
        raise LoadgenError("--min-recall needs --dataset: recall is measured against its ground truth")
    if args.max_error_rate is not None and not 0 <= args.max_error_rate < 1:
        raise LoadgenError(f"--max-error-rate must be in [0, 1), got {args.max_error_rate}")
    if not args.start_rate > 0 or not args.max_rate >= args.start_rate or not args.growth > 1:
        raise LoadgenError("need 0 < --start-rate <= --max-rate and --growth > 1")
    if not 0 < args.tolerance < 1 or args.max_steps < 1 or args.min_samples < 1:
        raise LoadgenError("need 0 < --tolerance < 1, --max-steps >= 1 and --min-samples >= 1")
    try:
        seconds(args.run_time)
    except ValueError as exc:
        raise LoadgenError(f"-t/--run-time: {exc}") from None
    if args.max_index_lag_s is not None and not args.max_index_lag_s > 0:
        raise LoadgenError(f"--max-index-lag-s must be positive, got {args.max_index_lag_s}")
    if args.max_index_lag_s is not None and args.stream_rates:
        raise LoadgenError("--max-index-lag-s searches the insert rate itself: drop --stream-rates")
    cost.prices(args)
    return Slo(args.slo_p99_ms, args.min_recall, args.max_error_rate, args.max_index_lag_s)


def line(outcome: Outcome, slo: Slo) -> str:
    """The answer in one line."""
    bounds = [f"p99 <= {slo.p99_ms:g} ms"]
    if slo.min_recall is not None:
        bounds.append(f"recall >= {slo.min_recall:g}")
    if slo.max_error_rate is not None:
        bounds.append(f"errors <= {slo.max_error_rate:.2%}")
    unit = "req/s"
    if slo.max_index_lag_s is not None:
        bounds.insert(0, f"index lag <= {slo.max_index_lag_s:g} s")
        unit = "inserts/s"
    hi = outcome.bracket[1]
    tried = f"{len(outcome.steps)} steps"
    if outcome.answer is None:
        return f"capacity: no rate held {', '.join(bounds)} ({tried}; {outcome.stopped})"
    above = f", {hi:g} {unit} did not" if hi is not None else ""
    return f"capacity: {outcome.answer:g} {unit} holds {', '.join(bounds)} ({tried}{above}; stopped: {outcome.stopped})"
