public import Prometheus
import Metrics

/// The process-wide metrics registry behind `GET /metrics`.
public enum MetricsExport {
    /// Routes every swift-metrics metric of this process into a new Prometheus registry and returns
    /// it. Call once, at start-up (swift-metrics allows one bootstrap per process). Histograms named
    /// in `durationBuckets` or `valueBuckets` get those buckets instead of the library's defaults;
    /// metrics named in `help` are exported with that text as their `# HELP` line.
    public static func bootstrap(durationBuckets: [String: [Duration]] = [:],
                                 valueBuckets: [String: [Double]] = [:],
                                 help: [String: String] = [:]) -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = durationBuckets
        factory.valueHistogramBuckets = valueBuckets
        MetricsSystem.bootstrap(DescribedMetricsFactory(inner: factory, help: help))
        return registry
    }
}

/// `PrometheusMetricsFactory` with help texts: swift-metrics has no place for a description, and the
/// library's factory registers every metric without one. A metric named in `help` is registered
/// through the registry's descriptor API with its text (the registry requires one text per name,
/// which a single table guarantees); any other goes to the library's factory unchanged.
struct DescribedMetricsFactory: MetricsFactory {
    let inner: PrometheusMetricsFactory
    let help: [String: String]

    private func descriptor(_ label: String) -> MetricNameDescriptor? {
        help[label].map { MetricNameDescriptor(metricName: label, unitName: "", helpText: $0) }
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let descriptor = descriptor(label) else { return inner.makeCounter(label: label, dimensions: dimensions) }
        return inner.registry.makeCounter(descriptor: descriptor, labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        guard let descriptor = descriptor(label) else { return inner.makeFloatingPointCounter(label: label, dimensions: dimensions) }
        return inner.registry.makeCounter(descriptor: descriptor, labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard let descriptor = descriptor(label) else {
            return inner.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
        }
        guard aggregate else { return inner.registry.makeGauge(descriptor: descriptor, labels: dimensions) }
        return inner.registry.makeValueHistogram(descriptor: descriptor, labels: dimensions,
                                                 buckets: inner.valueHistogramBuckets[label] ?? inner.defaultValueHistogramBuckets)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        guard let descriptor = descriptor(label) else { return inner.makeMeter(label: label, dimensions: dimensions) }
        return inner.registry.makeGauge(descriptor: descriptor, labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let descriptor = descriptor(label) else { return inner.makeTimer(label: label, dimensions: dimensions) }
        return inner.registry.makeDurationHistogram(descriptor: descriptor, labels: dimensions,
                                                    buckets: inner.durationHistogramBuckets[label] ?? inner.defaultDurationHistogramBuckets)
    }

    // Handlers are the registry's own types either way: the library's factory unregisters them.
    func destroyCounter(_ handler: any CounterHandler) { inner.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { inner.destroyFloatingPointCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { inner.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { inner.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { inner.destroyTimer(handler) }
}
