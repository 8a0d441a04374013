import Foundation

/// The file whose creation releases a worker's batch held by `FaultMarker.held`: given to the
/// worker as `TIPLINE_FAULT_RELEASE_FILE` (`environment`), created by `open()`. A hold ends when
/// the test says, not after a time that a loaded machine may spend before the test is ready.
struct FaultRelease: Sendable {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("tipline-release-\(UUID().uuidString)").path

    var environment: [String: String] { ["TIPLINE_FAULT_RELEASE_FILE": path] }

    func open() {
        FileManager.default.createFile(atPath: path, contents: nil)
    }
}
