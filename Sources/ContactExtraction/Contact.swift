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

    /// Makes a contact from a kind and an already canonical value.
    public init(kind: ContactKind, value: String) {
        self.kind = kind
        self.value = value
    }

    /// Orders by kind, then by value.
    public static func < (lhs: Contact, rhs: Contact) -> Bool {
        if lhs.kind != rhs.kind { return lhs.kind < rhs.kind }
        return lhs.value < rhs.value
    }
}
