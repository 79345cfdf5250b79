"""The building blocks of the scenario harness (benchmarks/bench_quality.py), on small inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_quality import (
    BURST_JOBS,
    GANG_LOAD,
    Options,
    cluster_gpus,
    example_cluster,
    example_quotas,
    gang_rows,
    main,
    most_contended_instant,
    quota_scheme,
    read_trace,
    run_policy,
    scale_cluster,
    with_burst,
)
from scheduler.model import GPU
from scheduler.policy import DEFAULT_TOPOLOGY_LABEL
from scheduler.simconfig import TraceRow, cluster_from_mapping, quotas_from_mapping
from scheduler.simulate import JobRecord

START = 1_500_000_000.0


@pytest.mark.parametrize(("factor", "nodes"), [(0.75, 48), (1.0, 64), (1.5, 96)])
def test_scaled_clusters_keep_node_shape_and_blocks(factor: float, nodes: int) -> None:
    base = example_cluster()
    scaled = scale_cluster(base, factor)
    assert len(scaled.nodes) == nodes
    assert {n.allocatable for n in scaled.nodes} == {base.nodes[0].allocatable}
    assert len({n.name for n in scaled.nodes}) == nodes
    blocks = {n.labels[DEFAULT_TOPOLOGY_LABEL] for n in scaled.nodes}
    assert len(blocks) == -(-nodes // 16)


@pytest.mark.parametrize("scheme", ["proportional", "equal", "academic4:industry1"])
@pytest.mark.parametrize("gpus", [384, 512, 768])
def test_quota_schemes_sum_to_the_cluster(scheme: str, gpus: int) -> None:
    base = example_quotas()
    quotas = quota_scheme(base, scheme, gpus)
    nominal = {
        name: sum(q.nominal for (_, r), q in spec.quotas.items() if r == GPU)
        for name, spec in quotas.tenants.items()
    }
    assert sum(nominal.values()) == gpus
    assert set(nominal) == set(base.tenants)
    if scheme == "equal":
        assert max(nominal.values()) - min(nominal.values()) <= 1
    if scheme == "academic4:industry1":
        academic = [n for n, s in quotas.tenants.items() if s.cohort == "academic"]
        industry = [n for n, s in quotas.tenants.items() if s.cohort != "academic"]
        assert min(nominal[n] for n in academic) >= 4 * min(nominal[n] for n in industry) - 4
        assert max(nominal[n] for n in academic) <= 4 * max(nominal[n] for n in industry) + 4


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="unknown quota scheme"):
        quota_scheme(example_quotas(), "random", 10)


def test_a_burst_is_3000_one_gpu_jobs_within_a_minute() -> None:
    rows = [TraceRow(START + 100 * i, 50.0, 2, "x") for i in range(10)]
    loaded = with_burst(rows, START + 450, "y")
    burst = [r for r in loaded if r.tenant == "y"]
    assert len(burst) == BURST_JOBS
    assert {(r.gpus, r.duration) for r in burst} == {(1, 3600.0)}
    assert max(r.submitted_at for r in burst) - min(r.submitted_at for r in burst) < 60
    assert [r.submitted_at for r in loaded] == sorted(r.submitted_at for r in loaded)


def test_the_most_contended_instant() -> None:
    def job(submit: float, start: float) -> JobRecord:
        return JobRecord("j", "t", 1, submit, start, start + 1, 0.0, 1.0, 0, "succeeded")

    records = [job(0, 0), job(10, 50), job(20, 60), job(30, 40), job(70, 70)]
    assert most_contended_instant(records, 1000.0) == 1030.0
    assert most_contended_instant(records, 1000.0, latest=25.0) == 1020.0


def test_gang_rows_reach_the_offered_load() -> None:
    rows = [TraceRow(START + 1000 * i, 500.0, 8 if i % 2 else 1, "x") for i in range(11)]
    gangs, scale = gang_rows(rows, 16, GANG_LOAD)
    assert [r.gpus for r in gangs] == [8] * 5
    span = (gangs[-1].submitted_at - gangs[0].submitted_at) * scale
    work = sum(r.gpus * r.duration for r in gangs)
    assert work / (16 * span) == pytest.approx(GANG_LOAD)


def test_run_policy_passes_checkpoint_options() -> None:
    nodes = cluster_from_mapping({"node_groups": [{"flavor": "v100", "count": 1, "gpus": 8}]})
    spec = quotas_from_mapping(
        {"tenants": [{"name": "x", "quotas": [{"flavor": "v100", "nominal": 8}]}]}
    )
    rows = [TraceRow(START + i, 100.0, 1, "x") for i in range(20)]
    report = run_policy(rows, nodes, spec, "fifo", Options(limit=None, checkpoint_share=1.0))
    assert report.checkpointing_jobs == 20
    assert cluster_gpus(nodes) == 8


def synthetic_trace(path: Path) -> None:
    lines = ["timestamp,duration,num_gpus,gpu_time,cluster"]
    tenants = ["6214e9", "b436b2", "ee9e8c", "7f04ca"]
    for i in range(60):
        gpus = (1, 8, 16, 32, 64)[i % 5]
        stamp = f"2017-10-0{1 + i // 20} {i % 24:02d}:{i % 60:02d}:00"
        duration = 600.0 + 100 * i
        lines.append(f"{stamp},{duration},{gpus},{duration * gpus},{tenants[i % 4]}")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("scenario", ["full", "sweep", "gangs"])
def test_scenarios_run_on_a_small_trace(
    scenario: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    trace = tmp_path / "trace.csv"
    synthetic_trace(trace)
    monkeypatch.setenv("YUSHAN_PHILLY_TRACE", str(trace))
    figures = main([scenario, "--limit-jobs", "40"])
    result = figures[scenario]
    assert isinstance(result, dict)
    printed = capsys.readouterr().out
    assert scenario in printed
    if scenario == "full":
        assert result["jobs"] == 40
        assert set(result["targets_met"]) >= {"avg_jct_2x_lower", "no_violations"}
    if scenario == "sweep":
        assert len(result["cases"]) == 9
    if scenario == "gangs":
        assert result["jobs"] == 32
        assert set(result["fifo"]["buckets"]) == {"8", "16", "24-32", "64+"}


def test_a_later_window_starts_at_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = tmp_path / "trace.csv"
    synthetic_trace(trace)
    monkeypatch.setenv("YUSHAN_PHILLY_TRACE", str(trace))
    whole = read_trace(0)
    window = read_trace(10, skip=20)
    assert len(window) == 10
    assert window[0].submitted_at == 0.0
    offset = whole[20].submitted_at
    assert [(r.submitted_at + offset, r.gpus, r.tenant) for r in window] == [
        (r.submitted_at, r.gpus, r.tenant) for r in whole[20:30]
    ]
    figures = main(["sweep", "--limit-jobs", "10", "--skip-jobs", "20", "--policies", "fifo"])
    assert figures["sweep"]["jobs"] == 10  # type: ignore[index]
