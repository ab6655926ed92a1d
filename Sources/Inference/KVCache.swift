/// Keys and values of past positions for one sequence, per layer, stored in half precision (as llama.cpp does).
public final class KVCache {
    /// Layers.
    public let layers: Int
    /// Key (and value) width per position: KV heads × head size.
    public let width: Int
    /// Positions the cache can hold.
    public let capacity: Int
    /// Positions filled.
    public internal(set) var count = 0
    var keys: [[Float16]]
    var values: [[Float16]]

    /// An empty cache.
    public init(layers: Int, width: Int, capacity: Int) {
        self.layers = layers
        self.width = width
        self.capacity = capacity
        keys = Array(repeating: [Float16](repeating: 0, count: width * capacity), count: layers)
        values = Array(repeating: [Float16](repeating: 0, count: width * capacity), count: layers)
    }

    /// Forgets positions from `position` on, so a shared prefix can be kept and the rest recomputed.
    public func truncate(to position: Int) {
        count = min(count, max(0, position))
    }

    /// Forgets everything.
    public func reset() { count = 0 }
}
