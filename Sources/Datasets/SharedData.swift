import Foundation

/// Where the project's shared datasets live: `$MICROSCALE_DATA`, else `../shared/data` beside the checkout.
public enum SharedData {
    /// The datasets folder.
    public static var directory: String {
        if let env = ProcessInfo.processInfo.environment["MICROSCALE_DATA"], !env.isEmpty { return env }
        return ProjectPaths.root + "/../shared/data"
    }
}

/// Paths inside the checkout.
public enum ProjectPaths {
    /// The package root, found from this source file's location (tests and tools run from the checkout).
    public static var root: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Sources/Datasets/SharedData.swift
        return url.path
    }

    /// The folder models are downloaded into: `$MICROSCALE_MODELS`, else `models/` in the checkout.
    public static var models: String {
        if let env = ProcessInfo.processInfo.environment["MICROSCALE_MODELS"], !env.isEmpty { return env }
        return root + "/models"
    }
}
