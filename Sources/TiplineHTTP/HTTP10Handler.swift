import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// What an HTTP/1.0 request means for its connection, said in the request's own headers before the
/// HTTP/1.1 codec drops its version (Hummingbird sees only `HTTPRequest`, which has none):
///
/// - The connection closes after the answer, and the answer says `Connection: close`. HTTP/1.0
///   connections are not persistent unless both sides agree to keep them; this server does not, so
///   a client such as `ab` or an old gateway, which reads the answer up to the close, is not left
///   waiting for the idle timeout.
/// - `Expect` is removed: a server MUST ignore a `100-continue` expectation in an HTTP/1.0 request
///   (RFC 9110 10.1.1), and such a client would not understand a `100 Continue`.
///
/// HTTP/1.1 requests pass untouched.
final class HTTP10Handler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data), head.version.major == 1, head.version.minor == 0 else {
            context.fireChannelRead(data)
            return
        }
        head.headers.remove(name: "expect")
        head.headers.replaceOrAdd(name: "connection", value: "close")
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }
}

/// Hummingbird's HTTP/1.1 child channel with `HTTP10Handler` put between the HTTP/1 decoder and the
/// codec that turns its parts into `HTTPRequest`s (`additionalChannelHandlers` go after that codec,
/// where the version is gone).
struct IntakeHTTP1Channel: ServerChildChannel {
    let http1: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try pipeline.addHandler(HTTP10Handler(), position: .after(decoder))
            return value
        }
    }

    func handle(value: HTTP1Channel.Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// `.http1(configuration:)` with `HTTP10Handler` in the pipeline.
    static func intakeHTTP1(configuration: HTTP1Channel.Configuration) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in IntakeHTTP1Channel(http1: HTTP1Channel(responder: responder, configuration: configuration)) }
    }
}
