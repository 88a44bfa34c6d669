"""Figures as one flat record: ratios against baselines measured in the same run, then a table."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cli.bench.client import AlbumPhase, Phase, Timed
from cli.bench.cpu import Floor
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


@dataclass
class Extra:
    """What issue 16 adds to a run: albums, the worker's CPU time per phase, the CPU floor (each may be absent)."""

    albums: AlbumPhase | None = None
    album_size: int | None = None
    worker_cpu_s: float | None = None  # over the single-job phase
    album_worker_cpu_s: float | None = None  # over the album phase
    worker_processes: int = 0
    floor: Floor | None = None


def _per_image_ms(seconds: float | None, images: int) -> float | None:
    return round(seconds * 1000 / images, 2) if seconds is not None and images else None


def _beyond(ms: float | None, floor: Floor | None) -> float | None:
    return round(ms - floor.cpu_ms_per_image, 2) if ms is not None and floor else None


def _extra(extra: Extra, e2e: Phase, raw: RawFigures) -> dict[str, Any]:
    albums, floor = extra.albums, extra.floor
    album_rate = round(albums.images_per_s, 2) if albums else None
    floor_rate = round(floor.images_per_s, 2) if floor else None
    singles_cpu = _per_image_ms(extra.worker_cpu_s, len(e2e.timed))
    albums_cpu = _per_image_ms(extra.album_worker_cpu_s, albums.images) if albums else None
    return {
        "album_size": extra.album_size if albums else None,
        "album_images": albums.images if albums else None,
        "failed_album_jobs": len(albums.failed()) if albums else None,
        "albums_images_per_s": album_rate,
        "album_latency_ms_p50": _ms(albums.seconds, 50) if albums else None,
        "ratio_albums_to_raw_batched": _ratio(album_rate, raw.batched_images_per_s),
        "cpu_floor_images_per_s": floor_rate,
        "cpu_floor_cpu_ms_per_image": round(floor.cpu_ms_per_image, 2) if floor else None,
        "cpu_floor_processes": floor.processes if floor else None,
        "ratio_e2e_to_cpu_floor": _ratio(e2e.jobs_per_s, floor_rate),
        "ratio_albums_to_cpu_floor": _ratio(album_rate, floor_rate),
        "worker_processes": extra.worker_processes,
        "worker_cpu_ms_per_image": singles_cpu,
        "worker_cpu_ms_per_image_albums": albums_cpu,
        "worker_cpu_ms_per_image_beyond_floor": _beyond(singles_cpu, floor),
        "worker_cpu_ms_per_image_beyond_floor_albums": _beyond(albums_cpu, floor),
    }


def figures(e2e: Phase, idle: list[Timed], noop: Phase | None, bare_rate: float | None, raw: RawFigures,
            service_model: dict[str, Any], batch_size: int, concurrency: int,
            extra: Extra | None = None) -> dict[str, Any]:
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
        **_extra(extra or Extra(), e2e, raw),
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
    ("albums, end to end", "albums_images_per_s", "images/s"),
    ("album latency p50 (submit to done)", "album_latency_ms_p50", "ms"),
    ("albums / raw batched", "ratio_albums_to_raw_batched", ""),
    ("CPU floor: decode+resize+faces, all cores", "cpu_floor_images_per_s", "images/s"),
    ("CPU floor, CPU per image", "cpu_floor_cpu_ms_per_image", "ms"),
    ("e2e / CPU floor", "ratio_e2e_to_cpu_floor", ""),
    ("albums / CPU floor", "ratio_albums_to_cpu_floor", ""),
    ("worker CPU per image, single jobs", "worker_cpu_ms_per_image", "ms"),
    ("worker CPU per image, albums", "worker_cpu_ms_per_image_albums", "ms"),
    ("worker CPU beyond the floor, single jobs", "worker_cpu_ms_per_image_beyond_floor", "ms"),
    ("worker CPU beyond the floor, albums", "worker_cpu_ms_per_image_beyond_floor_albums", "ms"),
]

# Issue 16's target table: (measure, key, target). A row reads n/a when its run did
# not measure it (the floor rows need the tiny backbone, the album rows --albums).
TARGETS = [
    ("near-free model, albums: e2e images/s / CPU floor", "ratio_albums_to_cpu_floor", ">= 0.7"),
    ("near-free model, single jobs: e2e jobs/s / CPU floor", "ratio_e2e_to_cpu_floor", ">= 0.4"),
    ("worker CPU per image beyond decode+resize+faces, albums", "worker_cpu_ms_per_image_beyond_floor_albums",
     "<= 1 ms"),
    ("albums: e2e / raw batched", "ratio_albums_to_raw_batched", ">= 0.85"),
    ("single jobs: e2e / raw batched", "ratio_e2e_to_raw_batched", ">= 0.6"),
    ("lone job's latency over the raw model's single image", "idle_latency_over_raw_single_ms", "<= 30 ms"),
]


def _meets(value: float, target: str) -> bool:
    op, bound = target.split()[:2]
    return value >= float(bound) if op == ">=" else value <= float(bound)


def targets_table(record: dict[str, Any]) -> str:
    """The issue's targets: the measured figure, the target beside it, and whether this run meets it."""
    size = record.get("album_size")
    rows = [(label.replace("albums", f"albums of {size}", 1) if size else label, key, target)
            for label, key, target in TARGETS]
    width = max(len(label) for label, _, _ in rows)
    lines = [f"  {'issue 16 target':<{width}}  {'measured':>10}  target"]
    for label, key, target in rows:
        value = record.get(key)
        shown = "n/a" if value is None else f"{value:,.3f}" if "ms" not in target else f"{value:,.1f}"
        verdict = "" if value is None else "  ok" if _meets(value, target) else "  below target"
        lines.append(f"  {label:<{width}}  {shown:>10}  {target}{verdict}")
    return "\n".join(lines)


def table(record: dict[str, Any]) -> str:
    head = (f"{record['jobs']} jobs ({record['failed_jobs']} failed), concurrency {record['concurrency']}, "
            f"{record['backbone']} ({record['weights']}), batch {record['batch_size']}, {record['device']}")
    width = max(len(label) for label, _, _ in ROWS)
    lines = [head, ""]
    for label, key, unit in ROWS:
        value = record.get(key)
        shown = "n/a" if value is None else f"{value:,.3f}" if unit == "" else f"{value:,.1f}"
        lines.append(f"  {label:<{width}}  {shown:>10} {unit}")
    return "\n".join([*lines, "", targets_table(record)])
