public import Logging
import Foundation
import Synchronization

/// Writes one JSON object per log line to standard error (`--log-format json`), for log shippers.
///
/// Fields: `ts` (ISO 8601, UTC), `level`, `label`, `msg`, then the metadata. Callers never put
/// report text or reporter identities into messages or metadata, so none reaches the log.
public struct JSONLogHandler: LogHandler {
    /// The logger's label (e.g. `tipline.http`).
    public let label: String
    /// Metadata attached to every line.
    public var metadata: Logger.Metadata = [:]
    /// Lines below this level are dropped.
    public var logLevel: Logger.Level = .info

    private static let lock = Mutex(())

    /// Creates a handler for `label`.
    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: Any] = [
            "ts": Date().formatted(.iso8601), "level": event.level.rawValue, "label": label, "msg": "\(event.message)",
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) where object[key] == nil {
            object[key] = "\(value)"
        }
        guard var line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        line.append(UInt8(ascii: "\n"))
        // One write per line under a lock, so lines from concurrent requests never interleave.
        // A line that cannot be written (a full disk, a log reader that went away) is dropped: it
        // must not stop a worker or a server, and there is nowhere left to say so.
        // (`FileHandle.write` traps on such an error.)
        Self.lock.withLock { _ in _ = writeAll(line, to: STDERR_FILENO) }
    }
}
