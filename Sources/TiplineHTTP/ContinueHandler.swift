import Hummingbird
import NIOCore
import NIOHTTPTypes

/// Answers `Expect: 100-continue` with `100 Continue` as soon as the request's head arrives, so a
/// client that waits for it before sending its body (curl does, for large bodies) does not sit out
/// its own timeout (a second, for curl) on every report. Hummingbird does not answer it.
///
/// A body declared longer than the server accepts gets no `100`: the route refuses it with 413 from
/// its head alone, and the client need not send it at all. Everything read passes through.
final class ContinueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    private let maxBodyBytes: Int

    init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let request) = unwrapInboundIn(data), Self.wantsContinue(request, maxBodyBytes: maxBodyBytes) {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
        }
        context.fireChannelRead(data)
    }

    /// Whether `request` waits for a `100 Continue` that this server should send.
    static func wantsContinue(_ request: HTTPRequest, maxBodyBytes: Int) -> Bool {
        guard request.headerFields[values: .expect].contains(where: { $0.lowercased() == "100-continue" }) else { return false }
        guard let length = request.headerFields[.contentLength] else { return true }
        return Int(length).map { $0 <= maxBodyBytes } ?? true
    }
}
