"""The soak script runs end to end (issue #6): a short run in CI, checking only that it completes,
prints valid JSON, and saw no 5xx and no failed request. The real run (60 s, 32 clients) and its
memory figures are a manual step: ``python -m benchmarks.soak --seconds 60 --clients 32``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.soak import KINDS, percentile, rss_summary

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_short_soak_completes_without_5xx(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--seconds", "5", "--clients", "4", "--warmup", "0",
         "--max-rss-growth-pct", "1000000", "--index", str(tmp_path / "index"), "--json-out", str(out), "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
    )
    summary = json.loads(run.stdout)  # valid JSON on stdout, whatever the outcome
    assert json.loads(out.read_text(encoding="utf-8")) == summary
    assert summary["server_errors_5xx"] == 0, summary["statuses"]
    assert summary["transport_errors"] == 0, summary["examples"]
    assert summary["unexpected_statuses"] == 0, summary["examples"]
    assert summary["requests"] > 0 and summary["valid_requests"] > 0 and summary["invalid_requests"] > 0
    # every kind is sent at least once, however few requests fit in the run: all expected statuses
    assert {str(s) for kind in KINDS for s in kind.expect} <= set(summary["statuses"])
    assert summary["rss"]["samples"] >= 3 and summary["server_log"]["tracebacks"] == 0
    assert run.returncode == 0, run.stderr[-2000:]


def test_rss_growth_compares_the_first_and_last_windows() -> None:
    samples = [(float(t), 100.0 if t < 10 else 104.0 if t < 50 else 110.0) for t in range(60)]
    rss = rss_summary(samples, 60.0)
    assert rss["first_window_mean_mb"] == 100.0 and rss["last_window_mean_mb"] == 110.0
    assert rss["growth_pct"] == 10.0 and rss["window_s"] == 10.0
    short = rss_summary([(0.0, 50.0), (1.0, 50.0), (2.0, 55.0), (3.0, 55.0)], 4.0)
    assert short["window_s"] == 2.0 and short["growth_pct"] == 10.0
    assert rss_summary([], 5.0)["growth_pct"] is None


def test_percentile() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) in (50.0, 51.0) and percentile(values, 100) == 100.0 and percentile([], 95) == 0.0
