"""GET /metrics for Prometheus: what the web app counts itself, plus totals read at scrape time.

- `dogbreed_jobs_submitted_total`, `dogbreed_http_requests_total{route,code}`: counted in this app.
  Under gunicorn each worker process counts its own; prometheus_client's multiprocess mode
  (PROMETHEUS_MULTIPROC_DIR, set by `dogbreed web`/`up`) adds them up at scrape time.
- `dogbreed_jobs_finished_total{status,kind}`, `dogbreed_job_seconds` (created -> finished): jobs end in
  workers, so these are the totals the workers keep in Redis (shared/job_metrics.py says why not rows).
- `dogbreed_queue_depth`: messages waiting in the broker's queue list: what KEDA's Redis-list scaler reads.

Protected like Flower: with DOGBREED_METRICS_USER and DOGBREED_METRICS_PASSWORD set, HTTP basic auth;
without them, loopback clients only.
"""
from __future__ import annotations

import hmac
import logging
import os

from flask import Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from shared import job_metrics
from shared.celeryconf import lane_queues
from shared.settings import Settings
from web.errors import ApiError

JOBS_SUBMITTED = Counter("dogbreed_jobs_submitted", "Jobs accepted (202) by the web app", registry=None)
HTTP_REQUESTS = Counter("dogbreed_http_requests", "HTTP requests by route pattern and status code",
                        ["route", "code"], registry=None)
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1", "::ffff:127.0.0.1")
log = logging.getLogger(__name__)


class BrokerTotals:
    """A collector that reads the workers' finished-job totals and the queue length from Redis when scraped."""

    def __init__(self, settings: Settings) -> None:
        import redis

        self.queue, self.lists = settings.queue, lane_queues(settings)
        self.redis = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=5) \
            if settings.broker_url else None

    def collect(self):
        if self.redis is None:
            return
        try:
            totals = job_metrics.read(self.redis, self.queue)
            depth = sum(self.redis.llen(name) for name in self.lists)  # every lane's list
        except Exception as exc:  # broker away: scrape what this app counted itself, not a 500
            log.warning("/metrics without the broker's totals: %s", exc)
            return
        finished = CounterMetricFamily("dogbreed_jobs_finished", "Jobs that ended, by status and result kind",
                                       labels=["status", "kind"])
        for (status, kind), count in sorted(totals.finished.items()):
            finished.add_metric([status, kind], count)
        yield finished
        buckets = [(repr(bound), count) for bound, count in totals.buckets] + [("+Inf", totals.count)]
        yield HistogramMetricFamily("dogbreed_job_seconds", "Seconds from a job's creation to its end",
                                    buckets=buckets, sum_value=totals.sum)
        yield GaugeMetricFamily("dogbreed_queue_depth", f"Messages waiting in the broker lists {', '.join(self.lists)}",
                                value=depth)


def _registry(app: Flask) -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # every gunicorn worker's counters, added up
    else:
        registry.register(JOBS_SUBMITTED)
        registry.register(HTTP_REQUESTS)
    registry.register(app.extensions["metrics_totals"])
    return registry


def _check_access(settings: Settings) -> None:
    if settings.metrics_user and settings.metrics_password:
        auth = request.authorization
        if not (auth and auth.type == "basic"
                and hmac.compare_digest(auth.username or "", settings.metrics_user)
                and hmac.compare_digest(auth.password or "", settings.metrics_password)):
            raise ApiError("unauthorized", "/metrics needs the user and password in DOGBREED_METRICS_USER "
                           "and DOGBREED_METRICS_PASSWORD (HTTP basic auth).", 401, {"WWW-Authenticate": 'Basic realm="metrics"'})
    elif request.remote_addr not in LOOPBACK_ADDRESSES:
        raise ApiError("metrics_forbidden", "/metrics answers loopback clients only; set DOGBREED_METRICS_USER "
                       "and DOGBREED_METRICS_PASSWORD to let Prometheus scrape it from elsewhere.", 403)


def metrics():
    _check_access(current_app.config["SETTINGS"])
    return Response(generate_latest(_registry(current_app)), mimetype=CONTENT_TYPE_LATEST)


def _count_request(response):
    route = request.url_rule.rule if request.url_rule else "unmatched"  # the pattern: bounded label values
    HTTP_REQUESTS.labels(route, str(response.status_code)).inc()
    return response


def init_app(app: Flask) -> None:
    app.extensions["metrics_totals"] = BrokerTotals(app.config["SETTINGS"])
    app.after_request(_count_request)
    app.add_url_rule("/metrics", "metrics", metrics)
