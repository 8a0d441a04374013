public import Foundation

/// Writes all of `bytes` to the open file `descriptor`, past interrupted and partial writes.
/// Returns nil once everything is written, or the `errno` of the write that failed (a full disk,
/// a pipe whose reader has gone, with SIGPIPE ignored). The one writer behind the command line's
/// output (which reports a failure) and the JSON log lines (which drop what cannot be written).
public func writeAll(_ bytes: Data, to descriptor: Int32) -> Int32? {
    bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Int32? in
        guard let base = raw.baseAddress else { return nil }
        var offset = 0
        while offset < raw.count {
            let written = Foundation.write(descriptor, base + offset, raw.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += written
        }
        return nil
    }
}
