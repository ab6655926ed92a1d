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

    /// Many tiny jobs back to back: a helper that wakes late must never run a chunk of the next job while its fields
    /// are being written (chunks would run twice, and the caller's closure would still be in use when it returns).
    @Test func lateHelpersNeverJoinTheNextJob() {
        // Two busy threads beside the submitter and the pool's helper, so the helper is often preempted mid-handshake.
        final class Flag: @unchecked Sendable { var stop = false }
        let flag = Flag()
        let burners = DispatchGroup()
        for _ in 0..<2 {
            DispatchQueue.global().async(group: burners) {
                var x = 0
                while !flag.stop { x &+= 1 }
                _ = x
            }
        }
        defer {
            flag.stop = true
            burners.wait()
        }
        var hits = [Int](repeating: 0, count: 4)
        var wrong = 0
        hits.withUnsafeMutableBufferPointer { h in
            let base = h.baseAddress!
            for round in 1...200_000 {
                let chunks = 2 + round % 3
                parallelFor(chunks: chunks, threads: 2) { base[$0] += 1 }
                for c in 0..<chunks where base[c] != 1 { wrong += 1 }
                for c in 0..<chunks { base[c] = 0 }
            }
        }
        #expect(wrong == 0)
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
