import Foundation
import HTTPTypes

extension HTTPFields {
    /// Whether a comma-separated field (`Connection`, `Expect`), in any of its lines, lists `token`
    /// (compared without case, spaces around it ignored).
    func lists(_ token: String, in name: HTTPField.Name) -> Bool {
        self[values: name].contains { value in
            value.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == token }
        }
    }
}
