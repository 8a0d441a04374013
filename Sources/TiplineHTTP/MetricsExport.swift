public import Prometheus
import Metrics

/// The process-wide metrics registry behind `GET /metrics`.
public enum MetricsExport {
    /// Routes every swift-metrics metric of this process into a new Prometheus registry and returns
    /// it. Call once, at start-up (swift-metrics allows one bootstrap per process). Histograms named
    /// in `durationBuckets` or `valueBuckets` get those buckets instead of the library's defaults.
    public static func bootstrap(durationBuckets: [String: [Duration]] = [:],
                                 valueBuckets: [String: [Double]] = [:]) -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = durationBuckets
        factory.valueHistogramBuckets = valueBuckets
        MetricsSystem.bootstrap(factory)
        return registry
    }
}
