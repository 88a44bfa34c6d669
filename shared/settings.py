"""Settings: the DOGBREED_* environment read once, at an entry point, into one frozen object."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

BACKBONES = ("efficientnet_lite2", "resnet50", "mobilenet_v2", "efficientnetv2b0", "tiny")
FACE_DETECTORS = ("yunet", "haar")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
LOG_FORMATS = ("text", "json")


class SettingsError(ValueError):
    """A DOGBREED_* variable holds a value we cannot use; the message names it and the fix."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number; set it to e.g. {default}") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r}: use 1/0, true/false, yes/no or on/off")


def _flag(value: bool) -> str:
    return "1" if value else "0"


@dataclass(frozen=True)
class Settings:
    var_dir: Path = Path("var")
    database_url: str = ""
    broker_url: str | None = None
    storage_dir: Path = Path("var/images")
    model_dir: Path = Path("var/models")
    feature_cache_dir: Path = Path("var/cache/features")
    backbone: str = "efficientnet_lite2"
    backbone_weights: str = "imagenet"
    dog_rule: str = "mass"
    xla: bool = False
    precision: str = "float32"
    queue: str = "dogbreed"
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_batch: int = 16
    max_batch_delay_ms: int = 10
    max_queued_jobs: int = 10_000
    job_deadline_s: int = 600
    reaper_interval_s: int = 30
    max_attempts: int = 3
    retention_days: int = 30
    rate_limit_per_minute: int = 120
    auth_required: bool = True
    flower_user: str | None = None
    flower_password: str | None = None
    secret_key: str = ""
    port: int = 8000
    flower_port: int = 5555
    host: str = "127.0.0.1"
    storage_url: str | None = None  # s3://bucket/prefix or file:///path; None: storage_dir
    s3_endpoint_url: str | None = None
    metrics_port: int | None = None  # a worker's /metrics; None: not served
    metrics_host: str = "127.0.0.1"
    metrics_user: str | None = None
    metrics_password: str | None = None
    log_format: str = "text"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        var_dir = Path(env.get("DOGBREED_VAR_DIR") or "var")
        backbone = (env.get("DOGBREED_BACKBONE") or cls.backbone).lower()
        if backbone not in BACKBONES:
            raise SettingsError(
                f"DOGBREED_BACKBONE={backbone!r} is not known; choose one of {', '.join(BACKBONES)}"
            )
        dog_rule = (env.get("DOGBREED_DOG_RULE") or "mass").lower()
        if dog_rule not in ("mass", "top1"):
            raise SettingsError(f"DOGBREED_DOG_RULE={dog_rule!r}: use 'mass' (default) or 'top1'")
        precision = env.get("DOGBREED_PRECISION") or "float32"
        log_format = (env.get("DOGBREED_LOG_FORMAT") or "text").lower()
        if log_format not in LOG_FORMATS:
            raise SettingsError(f"DOGBREED_LOG_FORMAT={log_format!r}: use 'text' (default) or 'json'")
        storage_url = env.get("DOGBREED_STORAGE_URL") or None
        storage_dir = Path(env.get("DOGBREED_STORAGE_DIR") or var_dir / "images")
        if storage_url:
            storage_dir = _check_storage_url(storage_url) or storage_dir
        metrics_port = _int(env, "DOGBREED_METRICS_PORT", 0) or None
        if precision not in PRECISIONS:
            raise SettingsError(f"DOGBREED_PRECISION={precision!r}: use one of {', '.join(PRECISIONS)}")
        return cls(
            var_dir=var_dir,
            database_url=env.get("DOGBREED_DATABASE_URL") or f"sqlite:///{(var_dir / 'dogbreed.db').resolve()}",
            broker_url=env.get("DOGBREED_BROKER_URL") or None,
            storage_dir=storage_dir,
            model_dir=Path(env.get("DOGBREED_MODEL_DIR") or var_dir / "models"),
            feature_cache_dir=Path(env.get("DOGBREED_FEATURE_CACHE_DIR") or var_dir / "cache" / "features"),
            backbone=backbone,
            backbone_weights=env.get("DOGBREED_BACKBONE_WEIGHTS") or "imagenet",
            dog_rule=dog_rule,
            xla=_bool(env, "DOGBREED_XLA", False),
            precision=precision,
            queue=env.get("DOGBREED_QUEUE") or "dogbreed",
            max_upload_bytes=_int(env, "DOGBREED_MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            max_pixels=_int(env, "DOGBREED_MAX_PIXELS", cls.max_pixels),
            max_batch=max(1, _int(env, "DOGBREED_MAX_BATCH", cls.max_batch)),
            max_batch_delay_ms=max(0, _int(env, "DOGBREED_MAX_BATCH_DELAY_MS", cls.max_batch_delay_ms)),
            max_queued_jobs=_int(env, "DOGBREED_MAX_QUEUED_JOBS", cls.max_queued_jobs),
            job_deadline_s=_int(env, "DOGBREED_JOB_DEADLINE_S", cls.job_deadline_s),
            reaper_interval_s=max(1, _int(env, "DOGBREED_REAPER_INTERVAL_S", cls.reaper_interval_s)),
            max_attempts=_int(env, "DOGBREED_MAX_ATTEMPTS", cls.max_attempts),
            retention_days=_int(env, "DOGBREED_RETENTION_DAYS", cls.retention_days),
            rate_limit_per_minute=_int(env, "DOGBREED_RATE_LIMIT_PER_MINUTE", cls.rate_limit_per_minute),
            auth_required=_bool(env, "DOGBREED_AUTH", True),
            flower_user=env.get("DOGBREED_FLOWER_USER") or None,
            flower_password=env.get("DOGBREED_FLOWER_PASSWORD") or None,
            secret_key=env.get("DOGBREED_SECRET_KEY") or "",
            port=_int(env, "DOGBREED_PORT", cls.port),
            flower_port=_int(env, "DOGBREED_FLOWER_PORT", cls.flower_port),
            host=env.get("DOGBREED_HOST") or "127.0.0.1",
            storage_url=storage_url,
            s3_endpoint_url=env.get("DOGBREED_S3_ENDPOINT_URL") or None,
            metrics_port=metrics_port,
            metrics_host=env.get("DOGBREED_METRICS_HOST") or "127.0.0.1",
            metrics_user=env.get("DOGBREED_METRICS_USER") or None,
            metrics_password=env.get("DOGBREED_METRICS_PASSWORD") or None,
            log_format=log_format,
        )

    def to_env(self) -> dict[str, str]:
        """The DOGBREED_* environment that gives these settings back in a child process."""
        env = {
            "DOGBREED_VAR_DIR": str(self.var_dir),
            "DOGBREED_DATABASE_URL": self.database_url,
            "DOGBREED_STORAGE_DIR": str(self.storage_dir),
            "DOGBREED_MODEL_DIR": str(self.model_dir),
            "DOGBREED_FEATURE_CACHE_DIR": str(self.feature_cache_dir),
            "DOGBREED_BACKBONE": self.backbone,
            "DOGBREED_BACKBONE_WEIGHTS": self.backbone_weights,
            "DOGBREED_DOG_RULE": self.dog_rule,
            "DOGBREED_XLA": _flag(self.xla),
            "DOGBREED_PRECISION": self.precision,
            "DOGBREED_QUEUE": self.queue,
            "DOGBREED_MAX_UPLOAD_BYTES": str(self.max_upload_bytes),
            "DOGBREED_MAX_PIXELS": str(self.max_pixels),
            "DOGBREED_MAX_BATCH": str(self.max_batch),
            "DOGBREED_MAX_BATCH_DELAY_MS": str(self.max_batch_delay_ms),
            "DOGBREED_MAX_QUEUED_JOBS": str(self.max_queued_jobs),
            "DOGBREED_JOB_DEADLINE_S": str(self.job_deadline_s),
            "DOGBREED_REAPER_INTERVAL_S": str(self.reaper_interval_s),
            "DOGBREED_MAX_ATTEMPTS": str(self.max_attempts),
            "DOGBREED_RETENTION_DAYS": str(self.retention_days),
            "DOGBREED_RATE_LIMIT_PER_MINUTE": str(self.rate_limit_per_minute),
            "DOGBREED_AUTH": _flag(self.auth_required),
            "DOGBREED_SECRET_KEY": self.secret_key,
            "DOGBREED_PORT": str(self.port),
            "DOGBREED_FLOWER_PORT": str(self.flower_port),
            "DOGBREED_HOST": self.host,
            "DOGBREED_METRICS_HOST": self.metrics_host,
            "DOGBREED_LOG_FORMAT": self.log_format,
        }
        optional = {"DOGBREED_BROKER_URL": self.broker_url, "DOGBREED_FLOWER_USER": self.flower_user,
                    "DOGBREED_FLOWER_PASSWORD": self.flower_password, "DOGBREED_STORAGE_URL": self.storage_url,
                    "DOGBREED_S3_ENDPOINT_URL": self.s3_endpoint_url,
                    "DOGBREED_METRICS_PORT": str(self.metrics_port or ""),
                    "DOGBREED_METRICS_USER": self.metrics_user, "DOGBREED_METRICS_PASSWORD": self.metrics_password}
        return {**env, **{name: value for name, value in optional.items() if value}}

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @property
    def uses_s3(self) -> bool:
        return bool(self.storage_url and self.storage_url.startswith("s3://"))

    def require_broker(self) -> str:
        if not self.broker_url:
            raise SettingsError(
                "DOGBREED_BROKER_URL is not set; point it at Redis, e.g. redis://127.0.0.1:6379/0 "
                "(`dogbreed up` picks one for you)"
            )
        return self.broker_url


def _check_storage_url(url: str) -> Path | None:
    """The folder a file:// URL names (None for s3://); any other scheme is refused with the fix."""
    if url.startswith("file://"):
        path = url[len("file://"):]
        if not path.startswith("/"):
            raise SettingsError(f"DOGBREED_STORAGE_URL={url!r}: a file URL needs an absolute path, e.g. file:///srv/images")
        return Path(path)
    if url.startswith("s3://") and url[len("s3://"):].split("/", 1)[0]:
        return None
    raise SettingsError(f"DOGBREED_STORAGE_URL={url!r}: use s3://bucket/prefix or file:///absolute/path")
