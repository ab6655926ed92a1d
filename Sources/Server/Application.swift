import Foundation
import Hummingbird
import Logging

/// The HTTP application: the router, the drift monitor, and a line on standard output with the address once listening
/// (`listening on http://HOST:PORT`, so scripts can start it on port 0). SIGTERM and SIGINT stop it gracefully:
/// new connections are refused and requests in flight finish.
public func makeApplication(service: CascadeService, logger: Logger) -> some ApplicationProtocol {
    _ = Telemetry.registry
    let config = service.config
    let drift = DriftMonitor(tasks: service.taskNames, store: service.store, drift: config.drift, logger: logger,
                             specs: service.classificationSpecs, audit: config.audit)
    return Application(
        router: makeRouter(service: service, logger: logger),
        configuration: .init(address: .hostname(config.host, port: config.port), serverName: "microscale"),
        services: [drift],
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? config.port
            FileHandle.standardOutput.write(Data("listening on http://\(config.host):\(port)\n".utf8))
        },
        logger: logger)
}
