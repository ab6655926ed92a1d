import Foundation

/// Keys and values of prompt prefixes kept for reuse: a task's fixed instructions (system prompt, schema, examples)
/// are evaluated once, and each later request that starts with them evaluates only its own tokens.
///
/// Prefixes are learned from traffic: after a prompt is evaluated, ``remember(_:cache:)`` compares it with recent
/// prompts, and a common beginning of at least ``minimumTokens`` tokens is copied out of the just-filled cache (a
/// memory copy, no extra evaluation). ``cache(for:capacity:)`` starts a new sequence from the longest stored prefix
/// of its prompt. Entries are evicted least recently used first. Thread-safe; stored caches are never written
/// after they are stored, only copied from.
public final class PrefixCache: @unchecked Sendable {
    /// The model whose caches these are.
    public let model: any LanguageModel
    /// Most prefixes kept.
    public let entries: Int
    /// Shortest prefix worth keeping.
    public let minimumTokens: Int

    private struct Entry {
        let tokens: [Int]
        let cache: KVCache
        var lastUse: UInt64
    }

    private let lock = NSLock()
    private var stored: [Entry] = []
    private var recent: [[Int]] = []
    private var clock: UInt64 = 0
    private var counters = Statistics()

    /// Hits, misses and positions reused so far.
    public struct Statistics: Sendable, Equatable {
        public var hits = 0
        public var misses = 0
        public var reusedTokens = 0
    }

    public init(model: any LanguageModel, entries: Int = 8, minimumTokens: Int = 32) {
        self.model = model
        self.entries = max(1, entries)
        self.minimumTokens = max(1, minimumTokens)
    }

    /// Counters since creation.
    public var statistics: Statistics { lock.withLock { counters } }

    /// A new cache of `capacity` positions holding the longest stored prefix of `prompt` (never all of it: the last
    /// prompt token is always evaluated, since its scores are what the caller needs). Its `count` says how many
    /// positions were reused; empty when no stored prefix fits.
    public func cache(for prompt: [Int], capacity: Int) throws -> KVCache {
        let fresh = model.newCache(capacity: capacity)
        let best: Entry? = lock.withLock {
            clock += 1
            var best: Int?
            for (i, e) in stored.enumerated() where e.tokens.count < prompt.count && e.tokens.count <= capacity
                && (best.map { e.tokens.count > stored[$0].tokens.count } ?? true) && prompt.starts(with: e.tokens) {
                best = i
            }
            guard let i = best else { counters.misses += 1; return nil }
            stored[i].lastUse = clock
            counters.hits += 1
            counters.reusedTokens += stored[i].tokens.count
            return stored[i]
        }
        if let best { try fresh.copy(from: best.cache) }
        return fresh
    }

    /// Evaluates `prefix` and keeps it (a task's instructions, known in advance). No-op when it is already held.
    public func store(prefix: [Int]) throws {
        guard !prefix.isEmpty, !lock.withLock({ stored.contains { $0.tokens == prefix } }) else { return }
        let cache = model.newCache(capacity: prefix.count)
        _ = try model.forward(prefix, cache: cache, outputs: .none)
        insert(prefix, cache)
    }

    /// Learns from a prompt just evaluated into `cache`: the longest beginning it shares with a recent prompt, when
    /// long enough and not yet held, is copied into a stored entry.
    public func remember(_ prompt: [Int], cache: KVCache) {
        let shared: Int = lock.withLock {
            defer {
                recent.append(prompt)
                if recent.count > entries { recent.removeFirst() }
            }
            var longest = 0
            for other in recent {
                var n = 0
                let limit = min(other.count, prompt.count, cache.count) - 1  // keep the last token to evaluate
                while n < limit && other[n] == prompt[n] { n += 1 }
                longest = max(longest, n)
            }
            guard longest >= minimumTokens, !stored.contains(where: { $0.tokens.count >= longest && prompt.starts(with: $0.tokens) })
            else { return 0 }
            return longest
        }
        guard shared > 0 else { return }
        let copy = model.newCache(capacity: shared)
        guard (try? copy.copy(from: cache, positions: shared)) != nil else { return }
        insert(Array(prompt.prefix(shared)), copy)
    }

    private func insert(_ tokens: [Int], _ cache: KVCache) {
        lock.withLock {
            clock += 1
            stored.removeAll { $0.tokens == tokens }
            if stored.count >= entries, let oldest = stored.indices.min(by: { stored[$0].lastUse < stored[$1].lastUse }) {
                stored.remove(at: oldest)
            }
            stored.append(Entry(tokens: tokens, cache: cache, lastUse: clock))
        }
    }
}
