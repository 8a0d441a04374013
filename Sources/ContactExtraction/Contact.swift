/// The kind of a seller's contact; cases are declared in the order results are sorted.
public enum ContactKind: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// A phone number in E.164 form, `+8613812345678`.
    case phone
    /// A QQ number, its digits only.
    case qq
    /// A WeChat ID, lower-cased.
    case wechat
    /// A Telegram username, lower-cased, without `@`.
    case telegram
    /// An e-mail address, lower-cased.
    case email
    /// A web host, lower-cased, without `www.` or port.
    case site

    /// Position in the declared order, so sorting never depends on the raw strings.
    private var rank: Int {
        switch self {
        case .phone: 0
        case .qq: 1
        case .wechat: 2
        case .telegram: 3
        case .email: 4
        case .site: 5
        }
    }

    /// Orders kinds as declared: phone, qq, wechat, telegram, email, site.
    public static func < (lhs: ContactKind, rhs: ContactKind) -> Bool {
        lhs.rank < rhs.rank
    }
}

/// One canonical way to reach a seller; two reports sharing one are about the same seller.
public struct Contact: Sendable, Hashable, Codable, Comparable {
    /// What kind of contact this is.
    public let kind: ContactKind
    /// The canonical value (see CONTACTS.md), already normalised.
    public let value: String
    /// FNV-1a of the kind and the value's UTF-8, computed once: a worker's completion puts each
    /// contact into about a dozen dictionaries and sets, and hashing the `String` each time was 5%
    /// of its CPU. `Hasher` still seeds what the dictionaries see; a crafted collision only makes
    /// equal fingerprints compare their values.
    private let fingerprint: UInt64

    private enum CodingKeys: String, CodingKey { case kind, value }

    /// Makes a contact from a kind and an already canonical value.
    public init(kind: ContactKind, value: String) {
        self.kind = kind
        self.value = value
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in kind.rawValue.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        hash = (hash ^ 0x3A) &* 0x0000_0100_0000_01b3  // ":" between kind and value
        for byte in value.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        fingerprint = hash
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(kind: try container.decode(ContactKind.self, forKey: .kind), value: try container.decode(String.self, forKey: .value))
    }

    public static func == (lhs: Contact, rhs: Contact) -> Bool {
        lhs.fingerprint == rhs.fingerprint && lhs.kind == rhs.kind && lhs.value == rhs.value
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(fingerprint)
    }

    /// Orders by kind, then by value.
    public static func < (lhs: Contact, rhs: Contact) -> Bool {
        if lhs.kind != rhs.kind { return lhs.kind < rhs.kind }
        return lhs.value < rhs.value
    }
}
