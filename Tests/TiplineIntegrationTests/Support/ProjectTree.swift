import Foundation

/// The project's source tree, for tests that read its files (scripts, migrations, specs).
enum ProjectTree {
    /// The directory holding `Package.swift`.
    static let root = URL(fileURLWithPath: #filePath)  // Tests/TiplineIntegrationTests/Support/ProjectTree.swift
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The text of the file at `path` from the root.
    static func text(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }
}
