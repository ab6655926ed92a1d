import Foundation
import Kernels

/// Keys and values of past positions for one sequence, per layer, stored in half precision (as llama.cpp does).
///
/// Storage is one allocation per kind laid out `[layer][position][width]`; pages are touched only as positions fill,
/// so a large capacity costs address space, not resident memory, until it is used.
public final class KVCache {
    /// Layers.
    public let layers: Int
    /// Key (and value) width per position: KV heads × head size.
    public let width: Int
    /// Positions the cache can hold.
    public let capacity: Int
    /// Positions filled.
    public internal(set) var count = 0
    private let keyStorage: UnsafeMutablePointer<UInt16>
    private let valueStorage: UnsafeMutablePointer<UInt16>

    /// An empty cache.
    public init(layers: Int, width: Int, capacity: Int) {
        self.layers = layers
        self.width = width
        self.capacity = capacity
        let n = max(1, layers * width * capacity)
        keyStorage = .allocate(capacity: n)
        valueStorage = .allocate(capacity: n)
    }

    deinit {
        keyStorage.deallocate()
        valueStorage.deallocate()
    }

    /// Half-precision keys of `layer`, position `p` at `p * width`.
    func keys(layer: Int) -> UnsafeMutablePointer<UInt16> { keyStorage + layer * capacity * width }
    /// Half-precision values of `layer`.
    func values(layer: Int) -> UnsafeMutablePointer<UInt16> { valueStorage + layer * capacity * width }

    /// Forgets positions from `position` on, so a shared prefix can be kept and the rest recomputed.
    public func truncate(to position: Int) {
        count = min(count, max(0, position))
    }

    /// Replaces this cache's contents with the first `positions` positions of `other` (by default all it holds):
    /// a prefix evaluated once, reused by every request that starts with it.
    public func copy(from other: KVCache, positions: Int? = nil) throws {
        let n = min(positions ?? other.count, other.count)
        guard other.layers == layers, other.width == width else {
            throw InferenceError.invalidConfiguration("a cache of \(other.layers) layers × \(other.width) cannot be copied into one of \(layers) × \(width)")
        }
        guard n <= capacity else { throw InferenceError.contextFull(needed: n, capacity: capacity) }
        for l in 0..<layers {
            keys(layer: l).update(from: other.keys(layer: l), count: n * width)
            values(layer: l).update(from: other.values(layer: l), count: n * width)
        }
        count = n
    }

    /// Stores `rows` rows of keys and values (each `width` floats) for `layer` at `position`, rounded to half precision.
    func store(layer: Int, position: Int, rows: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>) {
        let n = rows * width, offset = position * width
        Half.encode(k, keys(layer: layer) + offset, count: n)
        Half.encode(v, values(layer: layer) + offset, count: n)
    }

    /// Forgets everything.
    public func reset() { count = 0 }
}
