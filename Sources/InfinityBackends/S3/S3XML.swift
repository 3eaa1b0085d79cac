import Foundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// The parts of an S3 XML response the backend reads: repeated records (`Contents` of a
/// listing, `Error` of a batch delete) as maps of their fields, and every other leaf element
/// by name (`IsTruncated`, `UploadId`, `Code` …).
struct S3XML {
    var records: [[String: String]] = []
    var fields: [String: String] = [:]

    /// Reads `body`, collecting the elements named `record` as records.
    ///
    /// - Throws: ``BackendError`` naming `store` when the body is not XML.
    init(_ body: [UInt8], record: String, store: String) throws {
        let delegate = Delegate(record: record)
        let parser = XMLParser(data: Data(body))
        parser.delegate = delegate
        guard parser.parse() else {
            throw BackendError(code: .io, objectName: nil, message: "\(store) sent a response that is not valid XML")
        }
        records = delegate.records
        fields = delegate.fields
    }

    private final class Delegate: NSObject, XMLParserDelegate {
        let record: String
        var records: [[String: String]] = []
        var fields: [String: String] = [:]
        private var current: [String: String]?
        private var text = ""

        init(record: String) { self.record = record }

        func parser(
            _ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            text = ""
            if element == record { current = [:] }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            text += string
        }

        func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
            if element == record, let finished = current {
                records.append(finished)
                current = nil
            } else if current != nil {
                current![element] = text
            } else {
                fields[element] = text
            }
            text = ""
        }
    }
}
