"""Table rendering, relative times and argument parsing helpers."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime

import httpx
import pytest

from cli.commands.base import parse_duration, parse_key_value
from cli.output import age, cell, format_fields, format_table, relative_time
from tests.cli.driver import CliDriver, mock_http

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "-"),
        ("2026-11-26T12:00:00Z", "now"),
        ("2026-11-26T11:59:18Z", "42s ago"),
        ("2026-11-26T11:55:00+00:00", "5m ago"),
        ("2026-11-26T09:00:00", "3h ago"),  # naive times are UTC
        ("2026-11-14T12:00:00Z", "12d ago"),
        ("2026-12-26T12:00:00Z", "in 30d"),
    ],
)
def test_relative_time(value: str | None, expected: str) -> None:
    assert relative_time(value, NOW) == expected


def test_age_is_a_bare_duration() -> None:
    assert (age("2026-11-26T10:30:00Z", NOW), age(None, NOW)) == ("1h", "-")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "-"),
        ("", "-"),
        ([], "-"),
        (True, "yes"),
        (False, "no"),
        (0, "0"),
        (0.123456, "0.1235"),
        (2.0, "2"),
        (1796000000.25, "1796000000"),
        (["a", "b"], "a,b"),
        ({"k": "v", "x": 1}, "k=v,x=1"),
    ],
)
def test_cell(value: object, expected: str) -> None:
    assert cell(value) == expected


def test_table_columns_are_aligned_without_trailing_blanks() -> None:
    table = format_table(["ID", "STATUS", "REASON"], [["j-1", "queued", None], ["j-12", "ok", "x"]])
    assert table.splitlines() == [
        "ID    STATUS  REASON",
        "j-1   queued  -",
        "j-12  ok      x",
    ]


def test_fields_are_aligned() -> None:
    assert format_fields([("Job", "j-1"), ("Queue position", 3)]).splitlines() == [
        "Job:             j-1",
        "Queue position:  3",
    ]


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200), ("2w", 1209600)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5m", "3y", "1.5h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_parse_key_value() -> None:
    assert parse_key_value("gpu=a=b") == ("gpu", "a=b")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_key_value("=x")


def test_factor_headers_never_clash_with_job_columns() -> None:
    from cli.commands.tenants import factor_headers

    assert factor_headers(["tenant_drs", "priority"], ["PRIORITY"]) == [
        "TENANT DRS",
        "PRIORITY FACTOR",
    ]


def test_error_is_one_line_per_field_naming_the_file() -> None:
    from cli.errors import FieldError, InvalidInputError, NotFoundError
    from cli.output import Output

    def shown(error: InvalidInputError | NotFoundError, source: str | None = None) -> list[str]:
        stderr = io.StringIO()
        error.source = source
        Output("table", io.StringIO(), stderr).error(error)
        return stderr.getvalue().splitlines()

    gpus = [FieldError("body.gpus", "too many")]
    assert shown(InvalidInputError(422, "body.gpus: too many", field_errors=gpus), "j.yaml") == [
        "error: j.yaml: gpus: too many"
    ]
    both = [*gpus, FieldError("query.limit", "must be <= 500"), FieldError("body", "malformed")]
    assert shown(InvalidInputError(422, "whatever the detail", field_errors=both)) == [
        "error: gpus: too many",
        "error: query.limit: must be <= 500",
        "error: malformed",
    ]
    assert shown(NotFoundError(404, "job j-1 not found")) == ["error: job j-1 not found"]


def test_cluster_lists_flavors_then_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    node = {
        "name": "gpu-1",
        "flavor": "h100",
        "gpu_capacity": 8,
        "gpu_allocatable": 7,
        "gpu_allocated": 4,
        "gpu_product": "NVIDIA-H100-80GB-HBM3",
        "labels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "zone": "a"},
        "cpu_allocatable": "96",
        "memory_allocatable": "1440Gi",
        "ready": True,
        "schedulable": False,
    }
    flavor = {
        "flavor": "h100",
        "nodes": 1,
        "nodes_ready": 1,
        "gpu_capacity": 8,
        "gpu_allocatable": 7,
        "gpu_allocated": 4,
    }
    body = {"flavors": [flavor], "nodes": [node]}
    cli = CliDriver(mock_http(lambda _: httpx.Response(200, json=body)), capsys, "t")
    lines = cli.ok("cluster").stdout.splitlines()
    assert lines[1].split() == ["h100", "1", "1", "8", "7", "4"]
    assert lines[3].split()[:3] == ["NODE", "FLAVOR", "GPU"]
    assert lines[4].split() == [
        "gpu-1",
        "h100",
        "NVIDIA-H100-80GB-HBM3",
        "yes",
        "no",
        "7/8",
        "4",
        "96",
        "1440Gi",
    ]
    assert lines[6].split() == ["NODE", "LABELS"]
    assert lines[7].split() == ["gpu-1", "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3,zone=a"]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (0, "0s"), (45, "45s"), (5400, "1h 30m"), (86400, "1d"), (90061, "1d 1h")],
)
def test_durations_have_units(seconds: float | None, shown: str) -> None:
    from cli.output import duration

    assert duration(seconds) == shown


@pytest.mark.parametrize(
    ("gpu_seconds", "shown"),
    [(None, "-"), (0.0, "0 GPU-h"), (5e-5, "0 GPU-h"), (900, "0.25 GPU-h"), (5400, "1.5 GPU-h"),
     (36_000, "10 GPU-h"), (3600 * 12_345.4, "12,345 GPU-h")],
)  # fmt: skip
def test_usage_is_in_gpu_hours(gpu_seconds: float | None, shown: str) -> None:
    from cli.output import gpu_hours

    assert gpu_hours(gpu_seconds) == shown


@pytest.mark.parametrize(
    ("job", "shown"),
    [
        ({"max_runtime_seconds": None, "status": "queued"}, "none"),
        ({"max_runtime_seconds": 7200, "status": "queued"}, "2h"),
        (
            {
                "max_runtime_seconds": 7200,
                "status": "running",
                "started_at": "2026-11-30T11:30:00Z",
            },
            "2h (ends in 1h)",
        ),
        (
            {"max_runtime_seconds": 5400, "status": "succeeded", "started_at": "2026-11-30T09:00Z"},
            "1h 30m",
        ),
    ],
)
def test_a_running_jobs_time_limit_says_when_it_ends(job: dict[str, object], shown: str) -> None:
    from datetime import UTC, datetime

    from cli.commands.jobs import time_limit

    assert time_limit(job, datetime(2026, 11, 30, 12, 0, tzinfo=UTC)) == shown
