import Foundation
import Hummingbird
import NIOCore
import NIOHTTPTypes

/// Answers `Expect: 100-continue` with `100 Continue` once the request is the one being answered,
/// so a client that waits for it before sending its body (curl does, for large bodies) does not
/// sit out its own timeout (a second, for curl) on every report. Hummingbird does not answer it.
///
/// Responses go out in request order: a pipelined request's `100` waits until every response before
/// it has ended. A body declared longer than the server accepts gets no `100`: the route refuses it
/// with 413 from its head alone, and the client need not send it at all. Everything passes through.
/// (An HTTP/1.0 request's expectation never reaches it: `RequestHeadHandler` removes it.)
final class ContinueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let maxBodyBytes: Int
    /// For each request whose final response has not ended, in order: whether it still waits for a `100`.
    private var pending: [Bool] = []

    init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let request) = unwrapInboundIn(data) {
            pending.append(Self.wantsContinue(request, maxBodyBytes: maxBodyBytes))
            if pending.count == 1 { sendContinueIfWaiting(context: context) }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let ended = if case .end = unwrapOutboundIn(data) { true } else { false }
        context.write(data, promise: promise)
        // A final response ended: the next request, if it waits for a `100`, gets it now, after it.
        guard ended, !pending.isEmpty else { return }
        pending.removeFirst()
        sendContinueIfWaiting(context: context)
    }

    private func sendContinueIfWaiting(context: ChannelHandlerContext) {
        guard pending.first == true else { return }
        pending[0] = false
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
    }

    /// Whether `request` waits for a `100 Continue` that this server should send.
    static func wantsContinue(_ request: HTTPRequest, maxBodyBytes: Int) -> Bool {
        // A list (`100-continue, foo`) counts too: the other expectations are not understood, and
        // ignored, rather than leaving the client to wait out its own timeout.
        guard request.headerFields.lists("100-continue", in: .expect) else { return false }
        guard let length = ReportRequest.declaredLength(request.headerFields[.contentLength]) else { return true }
        return length <= maxBodyBytes
    }
}
