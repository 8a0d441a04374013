import ContactExtraction

/// Extracts with a fresh extractor and renders each contact as `kind:value`, for terse expectations.
func contacts(in text: String) -> [String] {
    ContactExtractor().extract(text).map { "\($0.kind.rawValue):\($0.value)" }
}
