import Foundation
public import Logging
import TiplineCore

/// The text log format (`--log-format text`): swift-log's stream handler on standard error, with
/// every line break and tab in a message or a metadata value turned into a space, so that one
/// event is one line (libpq's messages span lines: "server closed the connection
/// unexpectedly\n\tThis probably means...", and a grep for the event would miss its end).
public struct OneLineLogHandler: LogHandler {
    private var inner: StreamLogHandler

    /// A handler for `label` writing to standard error.
    public init(label: String) {
        inner = StreamLogHandler.standardError(label: label)
    }

    public var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue.mapValues(Self.oneLine) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue.map(Self.oneLine) }
    }

    public func log(event: LogEvent) {
        var event = event
        event.message = "\(Self.oneLine(event.message.description))"
        event.metadata = event.metadata?.mapValues(Self.oneLine)
        if let error = event.error {  // written by the stream handler as it is: made one line here
            event.metadata = (event.metadata ?? [:]).merging(
                ["error.message": .string(Self.oneLine("\(error)")), "error.type": .string(String(reflecting: type(of: error)))]
            ) { given, _ in given }
            event.error = nil
        }
        inner.log(event: event)
    }

    /// `text` with each run of line breaks and tabs (and the spaces around them) as one space.
    /// Other control characters (an escape sequence in a worker's name) are written as `\u{1B}`.
    public static func oneLine(_ text: String) -> String {
        guard text.contains(where: { $0.isNewline || $0 == "\t" }) else { return text.terminalSafe }
        return text.split(whereSeparator: { $0.isNewline || $0 == "\t" })
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ").terminalSafe
    }

    static func oneLine(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(oneLine(text))
        case .stringConvertible(let value): .string(oneLine(value.description))
        case .array(let values): .array(values.map(oneLine))
        case .dictionary(let values): .dictionary(values.mapValues(oneLine))
        }
    }
}
