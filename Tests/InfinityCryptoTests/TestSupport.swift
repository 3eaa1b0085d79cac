import InfinityCrypto

/// Bytes from hex text as the RFCs print it (spaces and newlines ignored).
func hex(_ text: String) -> [UInt8] {
    let digits = text.filter { !$0.isWhitespace }
    guard let bytes = Hex.decode(digits) else { fatalError("bad hex in test vector: \(text)") }
    return bytes
}

func secret(hex text: String) -> SecureBytes {
    SecureBytes(copying: hex(text))
}

func bytes(_ text: String) -> [UInt8] {
    Array(text.utf8)
}

extension SecureBytes {
    /// Test-only: the bytes, to compare with published vectors.
    var exposed: [UInt8] { withUnsafeBytes { Array($0) } }
}

/// The CryptoError code thrown by `body`, or nil if it threw nothing or something else.
func cryptoErrorCode(_ body: () throws -> Void) -> CryptoError.Code? {
    thrownCryptoError(body)?.code
}

func thrownCryptoError(_ body: () throws -> Void) -> CryptoError? {
    do {
        try body()
        return nil
    } catch let error as CryptoError {
        return error
    } catch {
        return nil
    }
}
