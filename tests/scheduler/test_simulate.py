"""The trace-driven simulator on synthetic traces and the shipped example configuration."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from scheduler.model import GPU
from scheduler.policy import Policy
from scheduler.simconfig import (
    ClusterConfig,
    QuotaConfig,
    SimulationInputError,
    TraceRow,
    cluster_from_mapping,
    load_cluster,
    load_quotas,
    quotas_from_mapping,
    read_trace,
)
from scheduler.simulate import configure_parser, run, simulate

ROOT = Path(__file__).resolve().parents[2]
START = 1_500_000_000.0


def cluster(nodes: int = 2) -> ClusterConfig:
    return cluster_from_mapping(
        {"node_groups": [{"flavor": "v100", "count": nodes, "gpus": 8, "block_size": 2}]}
    )


def quotas(a: int = 8, b: int = 8) -> QuotaConfig:
    return quotas_from_mapping(
        {
            "cohorts": [{"name": "root"}],
            "tenants": [
                {"name": name, "cohort": "root", "quotas": [{"flavor": "v100", "nominal": n}]}
                for name, n in (("a", a), ("b", b))
            ],
        }
    )


def flood_then_latecomer() -> list[TraceRow]:
    """Tenant a fills the cluster with long jobs; tenant b arrives later with short ones."""
    rows = [TraceRow(START + i, 20_000.0, 1, "a") for i in range(48)]
    rows += [TraceRow(START + 1000 + i, 600.0, 1, "b") for i in range(8)]
    return rows


def test_every_job_completes_without_violations() -> None:
    report = simulate(flood_then_latecomer(), cluster(), quotas(), Policy.named("fair+backfill"))
    assert report.completed == report.jobs == 56
    assert report.quota_violations == 0
    assert report.capacity_violations == 0
    assert 0 < report.gpu_utilisation <= 1
    assert report.avg_jct_seconds >= 600
    assert report.makespan_seconds > 0


def test_fair_sharing_gives_the_latecomer_its_quota_back() -> None:
    rows = flood_then_latecomer()
    fifo = simulate(rows, cluster(), quotas(), Policy.named("fifo"))
    fair = simulate(rows, cluster(), quotas(), Policy.named("fair"))
    assert fifo.preemptions == 0
    # Cost-aware: b's later jobs wait 600 s for b's own first jobs rather than throw away
    # another 1,000 GPU-seconds of a's work each.
    assert 1 <= fair.preemptions < 8
    assert fair.tenants["b"]["avg_jct_seconds"] < fifo.tenants["b"]["avg_jct_seconds"] / 4
    assert fair.avg_jct_seconds < fifo.avg_jct_seconds
    assert fair.quota_violations == fifo.quota_violations == 0


def test_jobs_past_their_limit_fail() -> None:
    rows = [TraceRow(START, 1000.0, 1, "a"), TraceRow(START + 1, 1000.0, 1, "b")]
    report = simulate(rows, cluster(), quotas(), Policy.named("fair"), runtime_limit_factor=0.5)
    assert (report.failed, report.completed) == (2, 0)


def test_multi_node_jobs_run_as_gangs() -> None:
    rows = [TraceRow(START, 100.0, 16, "a"), TraceRow(START, 100.0, 12, "b")]
    report = simulate(rows, cluster(nodes=4), quotas(a=16, b=16), Policy.named("fair"))
    assert report.completed == 2
    assert report.p99_queueing_delay_seconds == 0


def test_time_scale_compresses_arrivals() -> None:
    rows = [TraceRow(START + 1000 * i, 10.0, 1, "a") for i in range(5)]
    normal = simulate(rows, cluster(), quotas(), Policy.named("fifo"))
    compressed = simulate(rows, cluster(), quotas(), Policy.named("fifo"), time_scale=0.1)
    assert compressed.makespan_seconds < normal.makespan_seconds


def write_trace(path: Path, rows: list[TraceRow]) -> None:
    import datetime as dt

    lines = ["timestamp,duration,num_gpus,gpu_time,cluster"]
    for row in reversed(rows):
        stamp = dt.datetime.fromtimestamp(row.submitted_at, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{stamp},{row.duration},{row.gpus},{row.duration * row.gpus},{row.tenant}")
    path.write_text("\n".join([*lines, ""]) + "\n")


def test_trace_is_read_sorted_and_limited(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    write_trace(trace, flood_then_latecomer())
    rows = read_trace(trace, limit=10)
    assert len(rows) == 10
    assert [r.submitted_at for r in rows] == sorted(r.submitted_at for r in rows)
    assert rows[0].tenant == "a"


def test_cli_prints_the_report_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "trace.csv"
    write_trace(trace, flood_then_latecomer())
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    output = tmp_path / "report.json"
    args = parser.parse_args(
        [
            "--trace", str(trace),
            "--cluster", str(ROOT / "examples/philly/cluster.yaml"),
            "--quotas", str(tmp_path / "quotas.yaml"),
            "--policy", "fair",
            "--limit-jobs", "20",
            "-o", "json",
            "--output", str(output),
        ]
    )  # fmt: skip
    (tmp_path / "quotas.yaml").write_text(
        "tenants:\n  - {name: a, quotas: [{flavor: v100, nominal: 8}]}\n"
    )
    assert run(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(output.read_text())
    assert printed["jobs"] == 20
    assert printed["policy"] == "fair"
    for key in ("avg_jct_seconds", "p99_queueing_delay_seconds", "jain_fairness", "preemptions"):
        assert key in printed


def test_cli_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    args = parser.parse_args(["--cluster", str(tmp_path / "missing.yaml")])
    assert run(args) == 2
    assert capsys.readouterr().err == (
        f"yushan simulate: cannot read {tmp_path / 'missing.yaml'}: No such file or directory\n"
    )


def test_a_missing_trace_is_one_line_saying_where_the_sample_and_full_trace_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    assert run(parser.parse_args(["--trace", str(tmp_path / "philly.csv")])) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"yushan simulate: no trace at {tmp_path / 'philly.csv'}: pass --trace")
    assert "examples/philly/sample.csv" in line
    assert "Error" not in line  # no exception repr


def test_the_default_trace_is_the_shipped_sample(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    assert run(parser.parse_args(["-o", "json", "--no-progress"])) == 0
    assert json.loads(capsys.readouterr().out)["jobs"] == 400
    credit = (ROOT / "examples/philly/README.md").read_text()
    assert "Creative Commons Attribution 4.0" in credit


@pytest.mark.parametrize(
    "mapping",
    [{"node_groups": []}, {"node_groups": [{"flavor": "v100"}]}, {"nodes": 3}],
)
def test_malformed_cluster_files_are_rejected(mapping: dict[str, object]) -> None:
    with pytest.raises(SimulationInputError):
        cluster_from_mapping(mapping)


@pytest.mark.parametrize(
    ("cluster_file", "quota_file"),
    [("cluster.yaml", "quotas.yaml"), ("cluster-full.yaml", "quotas-full.yaml")],
)
def test_example_quotas_match_the_example_clusters(cluster_file: str, quota_file: str) -> None:
    example = ROOT / "examples/philly"
    nodes = load_cluster(example / cluster_file).nodes
    spec = load_quotas(example / quota_file)
    nominal = sum(q.nominal for t in spec.tenants.values() for (_, r), q in t.quotas.items())
    assert nominal == sum(n.allocatable.gpu for n in nodes)
    assert all(fr[1] == GPU for t in spec.tenants.values() for fr in t.quotas)
    assert len(spec.tenants) == 15
