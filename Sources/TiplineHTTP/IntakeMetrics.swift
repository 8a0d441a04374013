public import Prometheus
import Metrics

/// The process-wide metrics registry behind `GET /metrics`.
public enum IntakeMetrics {
    /// Routes every swift-metrics metric of this process into a new Prometheus registry and returns
    /// it. Call once, at start-up (swift-metrics allows one bootstrap per process).
    public static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }
}
