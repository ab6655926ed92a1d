import Kernels

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
    /// Half-precision bit patterns, `[layer][position × width]`.
    var keys: [[UInt16]]
    var values: [[UInt16]]

    /// An empty cache.
    public init(layers: Int, width: Int, capacity: Int) {
        self.layers = layers
        self.width = width
        self.capacity = capacity
        keys = Array(repeating: [UInt16](repeating: 0, count: width * capacity), count: layers)
        values = Array(repeating: [UInt16](repeating: 0, count: width * capacity), count: layers)
    }

    /// Forgets positions from `position` on, so a shared prefix can be kept and the rest recomputed.
    public func truncate(to position: Int) {
        count = min(count, max(0, position))
    }

    /// Stores `rows` rows of keys and values (each `width` floats) for `layer` at `position`, rounded to half precision.
    func store(layer: Int, position: Int, rows: Int, keys k: [Float], values v: [Float]) {
        let n = rows * width, offset = position * width
        keys[layer].withUnsafeMutableBufferPointer { dst in
            k.withUnsafeBufferPointer { Half.encode($0.baseAddress!, dst.baseAddress! + offset, count: n) }
        }
        values[layer].withUnsafeMutableBufferPointer { dst in
            v.withUnsafeBufferPointer { Half.encode($0.baseAddress!, dst.baseAddress! + offset, count: n) }
        }
    }

    /// Forgets everything.
    public func reset() { count = 0 }
}
