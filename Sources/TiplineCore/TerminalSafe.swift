extension String {
    /// The text with control characters (C0, DEL, C1) written as `\u{1B}`, so that a value a client
    /// or an administrator gave (an external id, a note, an error) cannot move the cursor, recolour
    /// or split a line of a terminal or a log.
    public var terminalSafe: String {
        guard unicodeScalars.contains(where: \.isTerminalControl) else { return self }
        var out = ""
        for scalar in unicodeScalars {
            if scalar.isTerminalControl {
                out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

extension Unicode.Scalar {
    /// C0 controls, DEL and C1 controls.
    public var isTerminalControl: Bool { value < 0x20 || (0x7F...0x9F).contains(value) }
}
