import Foundation

/// The file whose creation releases a worker's batch held by `FaultMarker.held`: given to the
/// worker as `TIPLINE_FAULT_RELEASE_FILE` (`environment`), created by `open()`. A hold ends when
/// the test says, not after a time that a loaded machine may spend before the test is ready.
struct FaultRelease: Sendable {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("tipline-release-\(UUID().uuidString)").path

    var environment: [String: String] { ["TIPLINE_FAULT_RELEASE_FILE": path] }

    /// `environment`, and the worker's start-up held too (`TIPLINE_FAULT_START_HOLD`).
    var startHeldEnvironment: [String: String] { environment.merging(["TIPLINE_FAULT_START_HOLD": "1"]) { $1 } }

    func open() {
        FileManager.default.createFile(atPath: path, contents: nil)
    }

    /// Whether a worker waits inside a completion for this release (`FaultMarker.locked`).
    var isAwaited: Bool { FileManager.default.fileExists(atPath: path + ".waiting") }
}
