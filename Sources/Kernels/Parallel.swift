import CKernels

/// Runs `body(chunk)` for `chunks` chunks of work on the persistent thread pool (or inline with `threads` ≤ 1)
/// and returns when all are done.
///
/// Callers write only to memory owned by their chunk, so the chunks need no synchronisation.
@inline(__always)
public func parallelFor(chunks: Int, threads: Int, _ body: (Int) -> Void) {
    if threads <= 1 || chunks <= 1 {
        for c in 0..<chunks { body(c) }
        return
    }
    withoutActuallyEscaping(body) { body in
        var job = body
        withUnsafeMutablePointer(to: &job) { pointer in
            ms_parallel_for(Int32(chunks), Int32(threads), { context, chunk in
                context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(chunk))
            }, pointer)
        }
    }
}
