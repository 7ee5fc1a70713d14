"""Monitoring: the decision service's Prometheus metrics, OpenTelemetry traces and JSON logs."""

from fraudops.monitoring.logs import configure_logging, get_logger, mask_pans
from fraudops.monitoring.metrics import SLO_LATENCY_S, SLO_TARGET, Metrics
from fraudops.monitoring.tracing import current_span_id, current_trace_id, tracer_provider

__all__ = [
    "SLO_LATENCY_S",
    "SLO_TARGET",
    "Metrics",
    "configure_logging",
    "current_span_id",
    "current_trace_id",
    "get_logger",
    "mask_pans",
    "tracer_provider",
]
