"""The capacity planner (`jobwatch plan`) on examples worked by hand (docs/scaling.md explains them)."""

from __future__ import annotations

import pytest
from jobwatch_tools.planner import Assumptions, Endpoint, plan, synthetic_fleet

ASSUME = Assumptions()  # 60 s period, 512 MB, 950 us per job, 50 ms answers, 64 / 16 concurrency


def test_the_budget_is_the_period_less_the_tick_margin() -> None:
    assert ASSUME.budget_s == 45.0  # 60 - min(15 s upstream deadline, 60 / 4)
    assert Assumptions(period_s=300).budget_s == 285.0
    assert ASSUME.vcpu == pytest.approx(512 / 1769)


def test_ten_thousand_jobs_fit_one_invocation_and_cost_what_the_bench_model_says() -> None:
    fleet = [Endpoint(f"e{n}", "weaviate-export", 1000) for n in range(10)]
    result = plan(fleet)
    # CPU 10,000 x 950 us = 9.5 s, at 0.2894 vCPU 32.8 s; the wait 10,000 x 50 ms / 64 = 7.8 s
    assert result.cpu_s == 9.5 and result.one_invocation_s == pytest.approx(32.8, abs=0.1)
    assert result.fits_one_invocation and result.workers == 1 and result.index_shards == 1
    cost = result.usd_per_1000_job_months
    # 32.82 s x 0.5 GB x $0.0000133334 x 43,200 cycles / 10 = $0.945
    assert cost["lambda_duration"] == pytest.approx(0.945, abs=0.001)
    # 10,000 x 950 B / 8 KB = 1,159.7 read units a cycle x $0.125 per million x 43,200 / 10 = $0.626
    assert cost["ddb_reads"] == pytest.approx(0.626, abs=0.001)


def test_a_rate_limited_endpoint_is_polled_less_often_whatever_the_compute() -> None:
    fleet = [Endpoint("zilliz", "zilliz-import-v1", 1200), Endpoint("weaviate", "weaviate-export", 1200)]
    result = plan(fleet)
    # 1,200 jobs at Zilliz's documented 20 requests/s take 60 s > 45 s: every 2nd period at best;
    # the same on Weaviate (no documented rate) takes 1,200 x 50 ms / 16 slots = 3.75 s
    assert [(limit.name, limit.seconds, limit.every_periods) for limit in result.limited_endpoints] == [
        ("zilliz", 60.0, 2)
    ]
    assert not result.fits_one_invocation and result.workers == 1


def test_a_million_jobs_need_workers_and_index_shards() -> None:
    result = plan(synthetic_fleet(1_000_000, 2000))
    # 950 s of CPU at 0.2894 vCPU = 3,282 s; each worker gets 80 % of 45 s = 36 s -> 92 workers
    assert result.workers == 92 and result.fanned_out_s <= 36.0
    assert result.index_shards >= result.workers
    assert result.limited_endpoints and all(limit.every_periods >= 2 for limit in result.limited_endpoints)


def test_a_synthetic_fleet_holds_every_job_once_and_is_the_same_for_a_seed() -> None:
    fleet = synthetic_fleet(100_003, 500, seed=7)
    assert sum(endpoint.jobs for endpoint in fleet) == 100_003 and len(fleet) == 500
    assert fleet == synthetic_fleet(100_003, 500, seed=7)
    assert fleet[0].jobs > fleet[-1].jobs >= 1  # a few big endpoints, a long tail
    assert len(synthetic_fleet(3, 10)) == 3  # never more endpoints than jobs


def test_the_plan_command_prints_the_plan_and_refuses_an_empty_fleet(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from jobwatch_tools.cli import main

    assert main(["plan", "--jobs", "100000", "--endpoints", "500", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["jobs"], printed["endpoints"], printed["fits_one_invocation"]) == (100_000, 500, False)
    assert main(["plan", "--jobs", "1000", "--endpoints", "20"]) == 0
    assert "fits" in capsys.readouterr().out
    assert main(["plan", "--jobs", "0"]) == 2
    assert "--jobs and --endpoints must be at least 1" in capsys.readouterr().err
