import Dispatch

/// Carries a value across a concurrency boundary whose safety the caller guarantees (disjoint writes per chunk).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
}

/// Runs `body(chunk)` for `chunks` chunks of work on up to `threads` cores and returns when all are done.
///
/// Callers write only to memory owned by their chunk, so the chunks need no synchronisation.
@inline(__always)
public func parallelFor(chunks: Int, threads: Int, _ body: (Int) -> Void) {
    if threads <= 1 || chunks <= 1 {
        for c in 0..<chunks { body(c) }
        return
    }
    withoutActuallyEscaping(body) { body in
        let shared = UncheckedSendable(value: body)
        DispatchQueue.concurrentPerform(iterations: chunks) { shared.value($0) }
    }
}
