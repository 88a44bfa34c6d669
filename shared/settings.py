"""Settings: the DOGBREED_* environment read once, at an entry point, into one frozen object."""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Mapping

from shared.errors import FixedCodeError

BACKBONES = ("efficientnet_lite2", "resnet50", "mobilenet_v2", "efficientnetv2b0", "tiny")
FACE_DETECTORS = ("yunet", "haar")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")  # names a server may bind to and stay on this machine
LOG_FORMATS = ("text", "json")


CPU_MAX_BATCH, GPU_MAX_BATCH = 16, 128  # DOGBREED_MAX_BATCH's defaults, by what TensorFlow sees


class SettingsError(FixedCodeError, ValueError):
    """A DOGBREED_* variable holds a value we cannot use; the message names it and the fix."""

    code = "bad_setting"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number; set it to e.g. {default}") from None


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise SettingsError(f"{name}={value} must be at least 1; set it to e.g. {default}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r}: use 1/0, true/false, yes/no or on/off")


ENV_NAMES = {"auth_required": "DOGBREED_AUTH"}  # the one field whose variable is not DOGBREED_<FIELD>


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
    face_detector: str = "yunet"
    face_model: str | None = None  # a YuNet .onnx file; default: the official one, fetched into model_dir
    dog_rule: str = "mass"
    xla: bool = False
    precision: str = "float32"
    queue: str = "dogbreed"
    lanes: bool = True  # single uploads (interactive lane) go ahead of album images (bulk lane); see celeryconf
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_concurrent_decodes: int = 2
    decode_memory_mb: int = 1024  # the estimated peaks of one process's decodes at once (shared/images.py)
    # None: decided by the worker once TensorFlow is loaded (16 on a CPU, 128 on a GPU); this module
    # stays free of TensorFlow, so the web and the light CLI never load it.
    max_batch: int | None = None
    decode_threads: int | None = None  # a worker's decode threads; None: one per core it may use
    max_batch_delay_ms: int = 10
    max_queued_jobs: int = 10_000
    job_deadline_s: int = 600
    reaper_interval_s: int = 30
    heartbeat_ttl_s: int = 15
    max_attempts: int = 3
    retention_days: int = 30
    rate_limit_per_minute: int = 120
    max_files_per_request: int = 32
    max_waiters: int = 500  # per web process: sync-mode requests and event streams held open at once
    webhook_secret: str = ""
    webhook_allow_private: bool = False
    webhook_max_attempts: int = 6
    webhook_backoff_s: int = 5
    webhook_timeout_s: int = 10
    webhook_threads: int = 4  # each worker process's delivery pool (worker/webhooks.py), apart from its task threads
    image_url_allow_private: bool = False  # image_url on loopback, private and link-local addresses
    image_url_timeout_s: int = 10  # one image_url fetch, all of it (redirects included)
    login_failures: int = 10
    session_hours: int = 12
    auth_required: bool = True
    flower_user: str | None = None
    flower_password: str | None = None
    secret_key: str = ""
    port: int = 8000
    flower_port: int = 5555
    host: str = "127.0.0.1"
    secure_cookies: bool = False
    proxy_hops: int = 0
    # Peers whose X-Forwarded-* headers are believed (with proxy_hops): addresses or networks, comma-separated.
    trusted_proxies: str = "127.0.0.1,::1"
    hsts_seconds: int = 0
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
        face_detector = (env.get("DOGBREED_FACE_DETECTOR") or cls.face_detector).lower()
        if face_detector not in FACE_DETECTORS:
            raise SettingsError(f"DOGBREED_FACE_DETECTOR={face_detector!r}: use 'yunet' (default) or 'haar'")
        dog_rule = (env.get("DOGBREED_DOG_RULE") or "mass").lower()
        if dog_rule not in ("mass", "top1"):
            raise SettingsError(f"DOGBREED_DOG_RULE={dog_rule!r}: use 'mass' (default) or 'top1'")
        host = env.get("DOGBREED_HOST") or "127.0.0.1"
        if not _bool(env, "DOGBREED_AUTH", True) and host not in LOOPBACK_HOSTS:
            raise SettingsError(
                f"DOGBREED_AUTH=0 with DOGBREED_HOST={host} would show every job to the network; "
                "set DOGBREED_HOST=127.0.0.1, or switch accounts back on (DOGBREED_AUTH=1)"
            )
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
            face_detector=face_detector,
            face_model=env.get("DOGBREED_FACE_MODEL") or None,
            dog_rule=dog_rule,
            xla=_bool(env, "DOGBREED_XLA", False),
            precision=precision,
            queue=env.get("DOGBREED_QUEUE") or "dogbreed",
            lanes=_bool(env, "DOGBREED_LANES", True),
            max_upload_bytes=_int(env, "DOGBREED_MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            max_pixels=_int(env, "DOGBREED_MAX_PIXELS", cls.max_pixels),
            max_concurrent_decodes=_positive(env, "DOGBREED_MAX_CONCURRENT_DECODES", cls.max_concurrent_decodes),
            decode_memory_mb=_positive(env, "DOGBREED_DECODE_MEMORY_MB", cls.decode_memory_mb),
            max_batch=max(1, _int(env, "DOGBREED_MAX_BATCH", CPU_MAX_BATCH)) if env.get("DOGBREED_MAX_BATCH") else None,
            decode_threads=_positive(env, "DOGBREED_DECODE_THREADS", 4) if env.get("DOGBREED_DECODE_THREADS") else None,
            max_batch_delay_ms=max(0, _int(env, "DOGBREED_MAX_BATCH_DELAY_MS", cls.max_batch_delay_ms)),
            max_queued_jobs=_int(env, "DOGBREED_MAX_QUEUED_JOBS", cls.max_queued_jobs),
            job_deadline_s=_int(env, "DOGBREED_JOB_DEADLINE_S", cls.job_deadline_s),
            reaper_interval_s=max(1, _int(env, "DOGBREED_REAPER_INTERVAL_S", cls.reaper_interval_s)),
            max_attempts=_int(env, "DOGBREED_MAX_ATTEMPTS", cls.max_attempts),
            heartbeat_ttl_s=max(2, _int(env, "DOGBREED_HEARTBEAT_TTL_S", cls.heartbeat_ttl_s)),
            retention_days=_int(env, "DOGBREED_RETENTION_DAYS", cls.retention_days),
            rate_limit_per_minute=_int(env, "DOGBREED_RATE_LIMIT_PER_MINUTE", cls.rate_limit_per_minute),
            max_files_per_request=max(1, _int(env, "DOGBREED_MAX_FILES_PER_REQUEST", cls.max_files_per_request)),
            max_waiters=max(0, _int(env, "DOGBREED_MAX_WAITERS", cls.max_waiters)),
            webhook_secret=env.get("DOGBREED_WEBHOOK_SECRET") or "",
            webhook_allow_private=_bool(env, "DOGBREED_WEBHOOK_ALLOW_PRIVATE", False),
            webhook_max_attempts=max(1, _int(env, "DOGBREED_WEBHOOK_MAX_ATTEMPTS", cls.webhook_max_attempts)),
            webhook_backoff_s=max(0, _int(env, "DOGBREED_WEBHOOK_BACKOFF_S", cls.webhook_backoff_s)),
            webhook_timeout_s=max(1, _int(env, "DOGBREED_WEBHOOK_TIMEOUT_S", cls.webhook_timeout_s)),
            webhook_threads=max(1, _int(env, "DOGBREED_WEBHOOK_THREADS", cls.webhook_threads)),
            image_url_allow_private=_bool(env, "DOGBREED_IMAGE_URL_ALLOW_PRIVATE", False),
            image_url_timeout_s=max(1, _int(env, "DOGBREED_IMAGE_URL_TIMEOUT_S", cls.image_url_timeout_s)),
            login_failures=_int(env, "DOGBREED_LOGIN_FAILURES", cls.login_failures),
            session_hours=_positive(env, "DOGBREED_SESSION_HOURS", cls.session_hours),
            auth_required=_bool(env, "DOGBREED_AUTH", True),
            flower_user=env.get("DOGBREED_FLOWER_USER") or None,
            flower_password=env.get("DOGBREED_FLOWER_PASSWORD") or None,
            secret_key=env.get("DOGBREED_SECRET_KEY") or "",
            port=_int(env, "DOGBREED_PORT", cls.port),
            flower_port=_int(env, "DOGBREED_FLOWER_PORT", cls.flower_port),
            host=host,
            secure_cookies=_bool(env, "DOGBREED_SECURE_COOKIES", False),
            proxy_hops=max(0, _int(env, "DOGBREED_PROXY_HOPS", cls.proxy_hops)),
            trusted_proxies=_networks(env, "DOGBREED_TRUSTED_PROXIES", cls.trusted_proxies),
            hsts_seconds=max(0, _int(env, "DOGBREED_HSTS_SECONDS", cls.hsts_seconds)),
            storage_url=storage_url,
            s3_endpoint_url=env.get("DOGBREED_S3_ENDPOINT_URL") or None,
            metrics_port=metrics_port,
            metrics_host=env.get("DOGBREED_METRICS_HOST") or "127.0.0.1",
            metrics_user=env.get("DOGBREED_METRICS_USER") or None,
            metrics_password=env.get("DOGBREED_METRICS_PASSWORD") or None,
            log_format=log_format,
        )

    def to_env(self) -> dict[str, str]:
        """The DOGBREED_* environment that gives these settings back in a child process: every field is
        DOGBREED_<FIELD> (but auth_required, DOGBREED_AUTH); unset optional ones are left out."""
        env = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None:
                name = ENV_NAMES.get(item.name, f"DOGBREED_{item.name.upper()}")
                env[name] = _flag(value) if isinstance(value, bool) else str(value)
        return env

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @property
    def chunk_size(self) -> int:
        """An album's job ids per message: DOGBREED_MAX_BATCH, or a CPU's batch when the worker decides
        (on a GPU several chunks then share one batch)."""
        return self.max_batch or CPU_MAX_BATCH

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


def _networks(env: Mapping[str, str], name: str, default: str) -> str:
    """A comma-separated list of addresses or networks (127.0.0.1, 10.0.0.0/8, ::1), checked here."""
    raw = (env.get(name) or default).strip()
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(f"{name}: {item!r} is not an address or network; use e.g. 127.0.0.1,10.0.0.0/8") from None
    return raw


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
