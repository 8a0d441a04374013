public import ContactExtraction

/// What the pure domain reads out of one ad.
public struct Analysis: Sendable, Equatable {
    /// The canonical contacts (CONTACTS.md), unique and sorted.
    public var contacts: [Contact]
    /// The kind of ad.
    public var category: Category

    /// Reads an ad.
    public init(text: String, extractor: ContactExtractor = ContactExtractor()) {
        contacts = extractor.extract(text)
        category = Category.of(text)
    }
}
