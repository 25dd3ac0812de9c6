"""Prometheus metrics of one app instance, on its own registry (importing creates nothing)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class ServiceMetrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    model_version: Gauge
    reloads: Counter
    batch_size: Histogram
    refusals: Counter
    overload: Counter
    loop_restarts: Counter


def create_metrics() -> ServiceMetrics:
    registry = CollectorRegistry()
    return ServiceMetrics(
        registry=registry,
        requests=Counter("mlops_requests", "HTTP requests by route and status",
                         ["route", "status"], registry=registry),
        latency=Histogram("mlops_request_latency_seconds", "Request latency by route",
                          ["route"], registry=registry,
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                   2.5)),
        model_version=Gauge("mlops_model_version", "Registry version being served",
                            ["model_name"], registry=registry),
        reloads=Counter("mlops_model_reloads", "Model reload attempts by outcome", ["outcome"],
                        registry=registry),
        batch_size=Histogram("mlops_microbatch_rows", "Rows per micro-batch", registry=registry,
                             buckets=(1, 2, 4, 8, 16, 32, 64, 128)),
        refusals=Counter("mlops_model_refusals", "Versions @champion pointed at that were not "
                         "served, by kind (deliberate, transient)", ["kind"], registry=registry),
        overload=Counter("mlops_overload_rejections", "Requests answered 503 at once because "
                         "a bound was reached", ["bound"], registry=registry),
        loop_restarts=Counter("mlops_background_restarts", "Background loops restarted after "
                              "dying", ["loop"], registry=registry),
    )
