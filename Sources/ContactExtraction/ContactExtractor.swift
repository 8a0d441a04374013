/// Reads the canonical contacts out of an ad's text, as CONTACTS.md defines them.
///
/// The extractor is a single forward scan over the text's Unicode scalars (after one folding
/// pass), not a chain of regular expressions: it has to keep up with the intake rate on one core.
public struct ContactExtractor: Sendable {
    /// Makes an extractor; it holds no state, so one value can be shared freely.
    public init() {}

    /// Returns every contact in `text`, without duplicates, sorted by kind and then value.
    public func extract(_ text: String) -> [Contact] {
        var scan = Scan(text)
        scan.run()
        return scan.result()
    }
}
