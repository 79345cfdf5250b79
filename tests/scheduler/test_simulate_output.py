"""What ``yushan simulate`` prints and writes: table, JSON, per-job CSV, progress; trace parsing."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from scheduler.policy import Policy
from scheduler.simconfig import TraceRow, _parse_instant, cluster_from_mapping, quotas_from_mapping
from scheduler.simoutput import JOB_COLUMNS, duration, progress_bar
from scheduler.simulate import configure_parser, run, simulate

ROOT = Path(__file__).resolve().parents[2]
START = 1_500_000_000.0


def contended_rows() -> list[TraceRow]:
    """Two tenants on one 8-GPU node, with a gang and a job past its time limit."""
    rows = [TraceRow(START + i, 3000.0 + 100 * i, 1, "a") for i in range(12)]
    rows += [TraceRow(START + 500 + i, 600.0, 1, "b") for i in range(6)]
    rows += [TraceRow(START + 700, 1000.0, 8, "b")]
    return rows


def write_trace(path: Path, rows: list[TraceRow]) -> None:
    lines = ["timestamp,duration,num_gpus,gpu_time,cluster"]
    for row in reversed(rows):
        stamp = dt.datetime.fromtimestamp(row.submitted_at, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{stamp},{row.duration},{row.gpus},{row.duration * row.gpus},{row.tenant}")
    path.write_text("\n".join(lines) + "\n")


def files(tmp_path: Path) -> list[str]:
    trace = tmp_path / "trace.csv"
    write_trace(trace, contended_rows())
    (tmp_path / "cluster.yaml").write_text("node_groups:\n  - {flavor: v100, count: 1, gpus: 8}\n")
    (tmp_path / "quotas.yaml").write_text(
        "cohorts: [{name: root}]\n"
        "tenants:\n"
        "  - {name: a, cohort: root, quotas: [{flavor: v100, nominal: 4}]}\n"
        "  - {name: b, cohort: root, quotas: [{flavor: v100, nominal: 4}]}\n"
    )
    return [
        "--trace", str(trace),
        "--cluster", str(tmp_path / "cluster.yaml"),
        "--quotas", str(tmp_path / "quotas.yaml"),
    ]  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize("policy", ["fifo", "fair", "fair+backfill"])
def test_the_jobs_csv_agrees_with_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str
) -> None:
    jobs_out = tmp_path / "jobs.csv"
    argv = [*files(tmp_path), "--policy", policy, "-o", "json", "--jobs-out", str(jobs_out)]
    argv += ["--runtime-limit-factor", "1.0", "--checkpoint-share", "0.5"]
    assert run(parse(argv)) == 0
    summary = json.loads(capsys.readouterr().out)
    with jobs_out.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == JOB_COLUMNS
        rows = list(reader)
    assert len(rows) == summary["jobs"] == 19
    outcomes = [r["outcome"] for r in rows]
    assert outcomes.count("succeeded") == summary["completed"]
    assert outcomes.count("failed") == summary["failed"]
    assert outcomes.count("unfinished") == summary["unfinished"]
    done = [r for r in rows if r["outcome"] == "succeeded"]
    jct = [float(r["end_time"]) - float(r["submit_time"]) for r in done]
    queueing = [float(r["queueing_seconds"]) for r in done]
    assert sum(jct) / len(jct) == pytest.approx(summary["avg_jct_seconds"], abs=0.01)
    assert sum(queueing) / len(queueing) == pytest.approx(
        summary["avg_queueing_delay_seconds"], abs=0.01
    )
    assert sum(int(r["preemptions"]) for r in rows) == summary["preemptions"]
    ended = sorted(float(r["queueing_seconds"]) for r in rows if r["outcome"] != "unfinished")
    p99_rank = -(-len(ended) * 99 // 100) - 1
    assert summary["p99_queueing_delay_all_seconds"] == pytest.approx(ended[p99_rank], abs=0.01)
    for r in rows:
        if r["end_time"]:
            expected = float(r["end_time"]) - float(r["submit_time"]) - float(r["run_seconds"])
            assert float(r["queueing_seconds"]) == pytest.approx(max(0.0, expected), abs=0.01)
            assert float(r["start_time"]) >= float(r["submit_time"])
    assert rows[0]["submit_time"] == "0"
    assert {r["tenant"] for r in rows} == {"a", "b"}
    assert max(int(r["gpus"]) for r in rows) == 8


def test_the_default_output_is_a_table_for_people(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_file = tmp_path / "report.json"
    assert run(parse([*files(tmp_path), "--output", str(report_file)])) == 0
    captured = capsys.readouterr()
    assert "policy fair+backfill" in captured.out
    for text in ("Per tenant", "Per gang size", "JCT avg / p50 / p99", " a ", " b ", " h"):
        assert text in captured.out
    assert captured.err == ""  # no progress bar when standard error is not a terminal
    assert json.loads(report_file.read_text())["jobs"] == 19


def test_progress_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(parse([*files(tmp_path), "--progress", "-o", "json"])) == 0
    captured = capsys.readouterr()
    assert "19/19 jobs done" in captured.err
    assert json.loads(captured.out)["jobs"] == 19


def test_the_rich_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    with progress_bar(out, 10, enabled=True) as update:
        assert update is not None
        update(7200.0, 5, 10)
    assert "2.0 h" in out.getvalue()
    with progress_bar(out, 10, enabled=False) as nothing:
        assert nothing is None


def test_bad_checkpoint_share_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(parse([*files(tmp_path), "--checkpoint-share", "1.5"])) == 2
    assert "checkpoint share" in capsys.readouterr().err


def test_report_dict_has_no_per_job_records() -> None:
    nodes = cluster_from_mapping({"node_groups": [{"flavor": "v100", "count": 1, "gpus": 8}]})
    spec = quotas_from_mapping(
        {"tenants": [{"name": "a", "quotas": [{"flavor": "v100", "nominal": 8}]}]}
    )
    report = simulate(contended_rows()[:3], nodes, spec, Policy.named("fifo"))
    assert len(report.records) == 3
    assert "records" not in report.as_dict()
    json.dumps(report.as_dict())


@pytest.mark.parametrize(
    "text",
    ["2017-10-03 14:05:09", "2017-12-31 23:59:59", "2016-02-29 00:00:00", "2017-10-03T14:05:09"],
)
def test_fast_timestamp_parsing_matches_strptime(text: str) -> None:
    expected = dt.datetime.strptime(text.replace("T", " "), "%Y-%m-%d %H:%M:%S")
    assert _parse_instant(text) == expected.replace(tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(42, "42 s"), (750, "12.5 min"), (5 * 3600 + 720, "5.2 h"), (3.1 * 86400, "3.1 d")],
)
def test_durations_for_people(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_the_p99_over_failed_jobs_too_counts_the_waits_of_jobs_that_failed() -> None:
    """Both jobs hit their time limit (half their run time): the second waited 499 s for the
    node and then failed, so only the figure that counts failed jobs sees that wait."""
    nodes = cluster_from_mapping({"node_groups": [{"flavor": "v100", "count": 1, "gpus": 8}]})
    spec = quotas_from_mapping(
        {"tenants": [{"name": "a", "quotas": [{"flavor": "v100", "nominal": 8}]}]}
    )
    rows = [TraceRow(START, 1000.0, 8, "a"), TraceRow(START + 1, 1000.0, 8, "a")]
    report = simulate(rows, nodes, spec, Policy.named("fifo"), runtime_limit_factor=0.5)
    assert report.failed == 2
    assert report.p99_queueing_delay_seconds == 0
    assert report.p99_queueing_delay_all_seconds == pytest.approx(499.0)
