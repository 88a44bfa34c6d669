"""Figures as one flat record: ratios against baselines measured in the same run, then a table."""
from __future__ import annotations

from typing import Any

import numpy as np

from cli.bench.client import Phase, Timed
from cli.bench.raw import RawFigures


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 3) if numerator and denominator else None


def _ms(seconds: list[float], q: float) -> float:
    return round(float(np.percentile(seconds, q)) * 1000, 1)


STAGES = ("decode", "queue", "model", "faces")


def _stage_medians(timed: list[Timed]) -> dict[str, float | None]:
    """Median ms per stage, from each job's own record of where its time went."""
    out: dict[str, float | None] = {}
    for stage in STAGES:
        values = [t.job["result"].get("stages_ms", {}).get(stage) for t in timed if t.job.get("result")]
        values = [v for v in values if v is not None]
        out[f"stage_{stage}_ms_p50"] = round(float(np.median(values)), 2) if values else None
    return out


def figures(e2e: Phase, idle: list[Timed], noop: Phase | None, bare_rate: float | None, raw: RawFigures,
            service_model: dict[str, Any], batch_size: int, concurrency: int) -> dict[str, Any]:
    latencies = [t.seconds for t in e2e.timed]
    batch_sizes = [t.job["result"].get("batch_size", 1) for t in e2e.timed if t.job.get("result")]
    idle_ms = _ms([t.seconds for t in idle], 50)
    noop_rate = round(noop.jobs_per_s, 2) if noop else None
    return {
        "jobs": len(e2e.timed),
        "failed_jobs": len(e2e.failed()),
        "concurrency": concurrency,
        "e2e_jobs_per_s": round(e2e.jobs_per_s, 2),
        "raw_batched_images_per_s": round(raw.batched_images_per_s, 2),
        "raw_single_images_per_s": round(raw.single_images_per_s, 2),
        "ratio_e2e_to_raw_batched": _ratio(e2e.jobs_per_s, raw.batched_images_per_s),
        "latency_ms_p50": _ms(latencies, 50),
        "latency_ms_p99": _ms(latencies, 99),
        "server_latency_ms_p50": _ms([t.server_seconds for t in e2e.timed], 50),
        "polls_per_job": round(e2e.polls_per_job, 1),
        "service_mean_batch_size": round(float(np.mean(batch_sizes)), 2) if batch_sizes else None,
        "idle_latency_ms": idle_ms,
        "idle_server_latency_ms": _ms([t.server_seconds for t in idle], 50),
        "raw_single_latency_ms": round(raw.single_latency_ms, 1),
        "idle_latency_over_raw_single_ms": round(idle_ms - raw.single_latency_ms, 1),
        "faces_ms_per_image": round(raw.faces_ms_per_image, 1),
        "raw_pipeline_images_per_s": round(raw.pipeline_images_per_s, 2),
        "ratio_e2e_to_raw_pipeline": _ratio(e2e.jobs_per_s, raw.pipeline_images_per_s),
        "noop_jobs_per_s": noop_rate,
        "bare_celery_tasks_per_s": round(bare_rate, 2) if bare_rate else None,
        "ratio_noop_to_bare_celery": _ratio(noop_rate, bare_rate),
        **_stage_medians(e2e.timed),
        "backbone": service_model.get("backbone"),
        "weights": service_model.get("weights"),
        "batch_size": batch_size,
        "device": raw.device,
    }


ROWS = [
    ("end to end", "e2e_jobs_per_s", "jobs/s"),
    ("raw model, batched", "raw_batched_images_per_s", "images/s"),
    ("raw model, one at a time", "raw_single_images_per_s", "images/s"),
    ("e2e / raw batched (target >= 0.4)", "ratio_e2e_to_raw_batched", ""),
    ("latency p50", "latency_ms_p50", "ms"),
    ("latency p99", "latency_ms_p99", "ms"),
    ("latency p50, server side", "server_latency_ms_p50", "ms"),
    ("images per forward pass (mean)", "service_mean_batch_size", ""),
    ("one job, queue idle", "idle_latency_ms", "ms"),
    ("raw model, one image", "raw_single_latency_ms", "ms"),
    ("idle job over raw one image (target <= 30)", "idle_latency_over_raw_single_ms", "ms"),
    ("face detector per image", "faces_ms_per_image", "ms"),
    ("raw faces + model, batched", "raw_pipeline_images_per_s", "images/s"),
    ("e2e / raw faces + model", "ratio_e2e_to_raw_pipeline", ""),
    *[(f"stage {stage}, per job (p50, service side)", f"stage_{stage}_ms_p50", "ms") for stage in STAGES],
    ("no-op pipeline", "noop_jobs_per_s", "jobs/s"),
    ("bare Celery task, same broker", "bare_celery_tasks_per_s", "tasks/s"),
    ("no-op / bare Celery (target >= 0.5)", "ratio_noop_to_bare_celery", ""),
]


def table(record: dict[str, Any]) -> str:
    head = (f"{record['jobs']} jobs ({record['failed_jobs']} failed), concurrency {record['concurrency']}, "
            f"{record['backbone']} ({record['weights']}), batch {record['batch_size']}, {record['device']}")
    width = max(len(label) for label, _, _ in ROWS)
    lines = [head, ""]
    for label, key, unit in ROWS:
        value = record.get(key)
        shown = "n/a" if value is None else f"{value:,.3f}" if unit == "" else f"{value:,.1f}"
        lines.append(f"  {label:<{width}}  {shown:>10} {unit}")
    return "\n".join(lines)
