/// Dot products of one stored weight row with one activation row; one kernel per pair of types, as in ggml.
enum Dot {
    /// Q4_1 weights (`d * q + m`, q in 0…15) with Q8_1 activations: `Σ d_w d_a Σ q_w q_a + m_w s_a`.
    @inline(__always)
    static func q4_1(_ w: UnsafeRawPointer, _ q: UnsafePointer<Int8>, _ d: UnsafePointer<Float>, _ s: UnsafePointer<Float>, blocks: Int) -> Float {
        var sum: Float = 0
        for b in 0..<blocks {
            let block = w + b * 20
            let packed = block.loadUnaligned(fromByteOffset: 4, as: SIMD16<UInt8>.self)
            let lo = SIMD16<Int16>(truncatingIfNeeded: packed & 0x0F)
            let hi = SIMD16<Int16>(truncatingIfNeeded: packed &>> 4)
            let a = UnsafeRawPointer(q + b * 32)
            let a0 = SIMD16<Int16>(truncatingIfNeeded: a.loadUnaligned(as: SIMD16<Int8>.self))
            let a1 = SIMD16<Int16>(truncatingIfNeeded: a.loadUnaligned(fromByteOffset: 16, as: SIMD16<Int8>.self))
            // |15 * 127 * 2| fits in 16 bits; the 16-lane sum needs 32.
            let products = lo &* a0 &+ hi &* a1
            let isum = SIMD16<Int32>(truncatingIfNeeded: products).wrappedSum()
            sum += loadHalf(block, 0) * d[b] * Float(isum) + loadHalf(block, 2) * s[b]
        }
        return sum
    }

    /// Q4_0 weights (`d * (q - 8)`) with Q8_0 activations.
    @inline(__always)
    static func q4_0(_ w: UnsafeRawPointer, _ q: UnsafePointer<Int8>, _ d: UnsafePointer<Float>, blocks: Int) -> Float {
        var sum: Float = 0
        for b in 0..<blocks {
            let block = w + b * 18
            let packed = block.loadUnaligned(fromByteOffset: 2, as: SIMD16<UInt8>.self)
            let lo = SIMD16<Int16>(truncatingIfNeeded: packed & 0x0F) &- 8
            let hi = SIMD16<Int16>(truncatingIfNeeded: packed &>> 4) &- 8
            let a = UnsafeRawPointer(q + b * 32)
            let a0 = SIMD16<Int16>(truncatingIfNeeded: a.loadUnaligned(as: SIMD16<Int8>.self))
            let a1 = SIMD16<Int16>(truncatingIfNeeded: a.loadUnaligned(fromByteOffset: 16, as: SIMD16<Int8>.self))
            let products = lo &* a0 &+ hi &* a1
            let isum = SIMD16<Int32>(truncatingIfNeeded: products).wrappedSum()
            sum += loadHalf(block, 0) * d[b] * Float(isum)
        }
        return sum
    }

    /// Q8_0 weights with Q8_0 activations.
    @inline(__always)
    static func q8_0(_ w: UnsafeRawPointer, _ q: UnsafePointer<Int8>, _ d: UnsafePointer<Float>, blocks: Int) -> Float {
        var sum: Float = 0
        for b in 0..<blocks {
            let block = w + b * 34
            let w0 = SIMD16<Int16>(truncatingIfNeeded: block.loadUnaligned(fromByteOffset: 2, as: SIMD16<Int8>.self))
            let w1 = SIMD16<Int16>(truncatingIfNeeded: block.loadUnaligned(fromByteOffset: 18, as: SIMD16<Int8>.self))
            let a = UnsafeRawPointer(q + b * 32)
            let a0 = SIMD16<Int16>(truncatingIfNeeded: a.loadUnaligned(as: SIMD16<Int8>.self))
            let a1 = SIMD16<Int16>(truncatingIfNeeded: a.loadUnaligned(fromByteOffset: 16, as: SIMD16<Int8>.self))
            // Each product fits in 16 bits, their sums do not.
            let isum = SIMD16<Int32>(truncatingIfNeeded: w0 &* a0).wrappedSum() + SIMD16<Int32>(truncatingIfNeeded: w1 &* a1).wrappedSum()
            sum += loadHalf(block, 0) * d[b] * Float(isum)
        }
        return sum
    }

    /// Float dot product, 16 lanes at a time.
    @inline(__always)
    static func f32(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
            let y = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
            acc.addProduct(x, y)
            i += 16
        }
        var sum = acc.sum()
        while i < count { sum += a[i] * b[i]; i += 1 }
        return sum
    }

    /// Half-precision row with a float row.
    @inline(__always)
    static func f16(_ a: UnsafeRawPointer, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            let x = SIMD16<Float>(a.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<Float16>.self))
            let y = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
            acc.addProduct(x, y)
            i += 16
        }
        var sum = acc.sum()
        while i < count { sum += loadHalf(a, 2 * i) * b[i]; i += 1 }
        return sum
    }
}
