import Dispatch
import Testing
@testable import Kernels

@Suite struct ParallelTests {
    /// Every chunk runs exactly once, for many back-to-back jobs of different sizes.
    @Test func runsEveryChunkOnce() {
        for chunks in [1, 2, 3, 17, 64, 1000] {
            for _ in 0..<50 {
                var hits = [Int](repeating: 0, count: chunks)
                hits.withUnsafeMutableBufferPointer { h in
                    let base = h.baseAddress!
                    parallelFor(chunks: chunks, threads: 2) { base[$0] += 1 }
                }
                #expect(hits.allSatisfy { $0 == 1 })
            }
        }
    }

    /// Jobs submitted from several threads at once all complete correctly (a busy pool runs the job inline).
    @Test func concurrentSubmittersAllComplete() {
        let results = UnsafeMutableBufferPointer<Int>.allocate(capacity: 8)
        defer { results.deallocate() }
        struct Box: @unchecked Sendable { let value: UnsafeMutableBufferPointer<Int> }
        let shared = Box(value: results)
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            let sums = UnsafeMutableBufferPointer<Int>.allocate(capacity: 100)
            defer { sums.deallocate() }
            for _ in 0..<200 {
                sums.initialize(repeating: 0)
                parallelFor(chunks: 100, threads: 2) { sums[$0] = $0 }
            }
            shared.value[i] = sums.reduce(0, +)
        }
        #expect(Array(results) == [Int](repeating: 4950, count: 8))
    }
}
