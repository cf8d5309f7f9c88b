"""Options where they apply: the plumbing ``loadgen run`` sets itself is accepted but listed in no ``--help``,
``loadgen compare`` takes no load-model, check or Prometheus options, and one way to sweep is shown."""

from __future__ import annotations

import pytest
from conftest import run_cli

PLUMBING = ("--latency-file", "--recall-file", "--retrieval-file", "--open-loop-file", "--flows-file",
            "--workers-file", "--server-metrics-file", "--generator-file", "--results-dir", "--run-info")  # fmt: skip


def test_run_help_lists_no_plumbing_and_one_way_to_sweep() -> None:
    shown = run_cli("run", "--help").stdout
    assert not [flag for flag in PLUMBING if flag in shown]
    assert "--sweep-users" not in shown and "--sweep-rates" not in shown
    assert "--driver" in shown
    sweep = run_cli("sweep", "--help").stdout
    assert "--users" in sweep and "--rates" in sweep


@pytest.mark.parametrize("flag", ["--arrival-rate", "--check-p99-ms", "--prometheus-port", "--weights", "--driver"])
def test_compare_takes_no_load_model_options(flag: str) -> None:
    assert flag not in run_cli("compare", "--help").stdout
    refused = run_cli("compare", flag, "5")
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        f"loadgen: error: loadgen: unrecognized arguments: {flag} 5"
    ], refused.stderr
