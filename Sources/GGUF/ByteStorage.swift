#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Immutable bytes that outlive every view into them: a read-only memory map of a file, or a heap copy.
///
/// Views (`UnsafeRawBufferPointer`) handed out stay valid while the storage is alive; the storage is never written.
public final class ByteStorage: @unchecked Sendable {
    /// The first byte.
    public let base: UnsafeRawPointer
    /// The number of bytes.
    public let count: Int
    private let release: @Sendable (UnsafeRawPointer, Int) -> Void

    private init(base: UnsafeRawPointer, count: Int, release: @escaping @Sendable (UnsafeRawPointer, Int) -> Void) {
        self.base = base
        self.count = count
        self.release = release
    }

    deinit { release(base, count) }

    /// All bytes.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// A copy of `bytes` on the heap (used for in-memory files in tests and for small inputs).
    public static func copying<C: Collection>(_ bytes: C) -> ByteStorage where C.Element == UInt8 {
        let count = bytes.count
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        _ = UnsafeMutableRawBufferPointer(start: memory, count: count).initializeMemory(as: UInt8.self, from: bytes)
        return ByteStorage(base: UnsafeRawPointer(memory), count: count) { pointer, _ in
            UnsafeMutableRawPointer(mutating: pointer).deallocate()
        }
    }

    /// Maps the file at `path` read-only.
    public static func mapping(path: String) throws -> ByteStorage {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw GGUFError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw GGUFError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw GGUFError.cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(info.st_size)
        guard size > 0 else { throw GGUFError.cannotOpen(path: path, reason: "the file is empty") }
        guard let memory = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), memory != MAP_FAILED else {
            throw GGUFError.cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        return ByteStorage(base: UnsafeRawPointer(memory), count: size) { pointer, count in
            munmap(UnsafeMutableRawPointer(mutating: pointer), count)
        }
    }
}
