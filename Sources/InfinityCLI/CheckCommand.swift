import ArgumentParser
import Foundation
import InfinityDB

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify the store: its packs, index, refs, commits and trees, and with --read-data its data.",
        discussion: """
            Checks that the backend's packs and the chunk index agree, that every index entry lies inside its pack, that every ref, HEAD and reflog entry names a commit that loads and whose signature verifies, that every chunk reachable from them is in the index, and that every tree node decodes and fits its parent. Metadata chunks are decrypted as they are walked.

            --read-data also reads packs whole, in name order, and decrypts and verifies every chunk in them that something refers to. --read-data-subset reads some of the packs: a percentage chosen at random (10%), or n/t, the n-th of t groups, so that t runs with n from 1 to t read every pack once.

            Each problem is printed with the object at fault (pack, chunk, commit, ref or field). Exit status: 0 when nothing is wrong, 1 when damage was found or the check could not run.

            Examples:
              infinity check
              infinity check --read-data
              infinity check --read-data-subset 10%
              infinity check --read-data-subset 3/7 --json
            """)

    @OptionGroup var options: StoreOptionGroup

    @Flag(name: .long, help: "Also read every pack and verify every chunk in it.")
    var readData = false

    @Option(name: .long, help: "Read only some packs: a percentage (10%) or a group n/t (2/5).")
    var readDataSubset: String?

    @Flag(name: .long, help: "Print the report as JSON for scripts.")
    var json = false

    func validate() throws {
        _ = try selection()
    }

    private func selection() throws -> ReadDataSelection {
        do {
            return try readDataSubset.map { try ReadDataSelection(parsing: $0) } ?? (readData ? .all : .none)
        } catch let error as DatabaseError {
            throw ValidationError(error.message)
        }
    }

    func run() async throws {
        let selection = try selection()
        let store = try await options.openStore()
        let database = try store.database()
        var line: ProgressLine?
        var phase: CheckProgress.Phase?
        let report = try await database.check(readData: selection) { progress in
            if progress.phase != phase {
                line?.finish()
                phase = progress.phase
                line = ProgressLine(Self.label(progress.phase), total: progress.totalBytes, quiet: options.quiet || json)
            }
            line?.update(progress.bytes)
        }
        line?.finish()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            let output = JSONReport(clean: report.isClean, problems: report.problems, summary: report.summary)
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
        } else {
            for problem in report.problems { print("error: \(problem.object): \(problem.message)") }
            if !options.quiet || !report.isClean { print(Self.summaryLine(report, selection: selection)) }
        }
        if !report.isClean { throw ExitCode(1) }
    }

    private struct JSONReport: Encodable {
        var clean: Bool
        var problems: [CheckProblem]
        var summary: CheckSummary
    }

    private static func label(_ phase: CheckProgress.Phase) -> String {
        switch phase {
        case .packs: "listing packs"
        case .walk: "walking"
        case .readData: "reading packs"
        }
    }

    private static func summaryLine(_ report: CheckReport, selection: ReadDataSelection) -> String {
        let summary = report.summary
        var text = "checked " + [
            count(summary.packs, "pack"), count(summary.indexedChunks, "indexed chunk"), count(summary.refs, "ref"),
            count(summary.reflogEntries, "reflog entry", "reflog entries"), count(summary.commits, "commit"),
            count(summary.reachableChunks, "reachable chunk"),
        ].joined(separator: ", ")
        if selection != .none {
            text += "; read \(count(summary.packsRead, "pack")) (\(ByteCount.format(summary.bytesRead))), "
                + "verified \(count(summary.chunksVerified, "chunk"))"
            if summary.chunksUnreferenced > 0 { text += " (\(summary.chunksUnreferenced) unreferenced, not decrypted)" }
        }
        return text + (report.isClean ? ": no problems found" : ": \(count(report.problems.count, "problem")) found")
    }

    private static func count(_ number: Int, _ singular: String, _ plural: String? = nil) -> String {
        "\(number) " + (number == 1 ? singular : plural ?? singular + "s")
    }
}
