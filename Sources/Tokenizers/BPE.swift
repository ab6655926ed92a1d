/// Byte-pair-encoding merges over token ids: the lowest-ranked adjacent pair merges first, leftmost on ties.
struct BPEMerges: Sendable {
    /// Pair of ids packed as `left << 32 | right` to (rank, merged id).
    private let table: [UInt64: (rank: Int32, merged: Int32)]

    /// Merges from `"left right"` lines; lines whose parts or result are not tokens are skipped and counted.
    init(merges: [String], idForText: [String: Int]) throws {
        var table: [UInt64: (rank: Int32, merged: Int32)] = [:]
        table.reserveCapacity(merges.count)
        for (rank, line) in merges.enumerated() {
            guard let space = line.firstIndex(of: " ", after: line.startIndex) else {
                throw TokenizerError.invalidVocabulary("merge \(rank) '\(line)' has no separating space")
            }
            let left = String(line[..<space]), right = String(line[line.index(after: space)...])
            guard let l = idForText[left], let r = idForText[right], let m = idForText[left + right] else { continue }
            let key = UInt64(l) << 32 | UInt64(r)
            if table[key] == nil { table[key] = (Int32(rank), Int32(m)) }
        }
        self.table = table
    }

    /// Merges `symbols` (initial token ids, one per byte) in place until no ranked pair remains.
    func apply(_ symbols: inout [Int32]) {
        // Words are short, so a linear scan per merge beats a heap.
        while symbols.count > 1 {
            var best = Int32.max, bestIndex = -1, merged: Int32 = 0
            for i in 0..<(symbols.count - 1) {
                let key = UInt64(UInt32(bitPattern: symbols[i])) << 32 | UInt64(UInt32(bitPattern: symbols[i + 1]))
                if let m = table[key], m.rank < best {
                    best = m.rank; bestIndex = i; merged = m.merged
                }
            }
            if bestIndex < 0 { return }
            symbols[bestIndex] = merged
            symbols.remove(at: bestIndex + 1)
        }
    }
}

extension String {
    /// The first index of `c` at or after `start`, skipping position 0 so a merge of a leading space still splits right.
    func firstIndex(of c: Character, after start: Index) -> Index? {
        guard start < endIndex else { return nil }
        return self[index(after: start)...].firstIndex(of: c)
    }
}
