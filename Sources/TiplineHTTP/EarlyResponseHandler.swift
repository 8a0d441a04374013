import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Says `Connection: close` on the answer to a request that asked for it (Hummingbird closes the
/// connection after it without saying so). And ends the connection after a response that was sent
/// before its request's body had all arrived
/// (a 401 before the body is read, a 413 from the declared length): the response says
/// `Connection: close`, and the body still coming is read and dropped only up to `drainLimit` bytes
/// or to its end, whichever is first, so that a client that has not yet read the answer is not reset
/// before it can. Hummingbird otherwise reads such a body to its end and keeps the connection: a
/// client refused for its missing token could stream gigabytes into the server.
final class EarlyResponseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let drainLimit: Int
    /// A request not yet answered: whether its body has ended, and whether the client asked to
    /// close the connection after it (its answer says so too, as RFC 9112 9.6 asks).
    private struct Pending {
        var bodyEnded = false
        let asksClose: Bool
    }

    /// The requests not yet answered, in order (pipelined ones too).
    private var pending: [Pending] = []
    /// The response being written answers a request whose body is still arriving.
    private var early = false
    /// That response has ended: the connection ends with the body (or the limit).
    private var closing = false
    private var drained = 0
    /// How long a request's body may take from its head to its end, however steadily it trickles
    /// (each byte resets the idle timeout, so a byte every few seconds held a request for ever).
    private let bodyTimeout: TimeAmount
    private var bodyTimer: Scheduled<Void>?
    /// The body ran out of time and this handler answered 408: nothing else is written.
    private var timedOut = false

    init(drainLimit: Int, bodyTimeout: TimeAmount) {
        self.drainLimit = drainLimit
        self.bodyTimeout = bodyTimeout
    }

    func channelInactive(context: ChannelHandlerContext) {
        bodyTimer?.cancel()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        bodyTimer?.cancel()
    }

    /// The body of the request being read is still open when its time is up: 408 and close, or
    /// just close when its answer has gone already.
    private func bodyTimeUp(context: ChannelHandlerContext) {
        guard context.channel.isActive, pending.last?.bodyEnded == false else { return }
        if early || closing || pending.count > 1 {
            context.close(promise: nil)
            return
        }
        timedOut = true
        let seconds = bodyTimeout.nanoseconds / 1_000_000_000
        guard let body = try? JSONBody.bytes(ErrorEnvelope(error: .init(
            code: "request_timeout", message: "the request body did not arrive within \(seconds) s", field: nil))) else {
            context.close(promise: nil)
            return
        }
        var head = HTTPResponse(status: .requestTimeout)
        head.headerFields[.contentType] = JSONBody.contentType
        head.headerFields[.contentLength] = String(body.count)
        head.headerFields[.connection] = "close"
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(ByteBuffer(bytes: body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            pending.append(Pending(asksClose: request.headerFields.lists("close", in: .connection)))
            bodyTimer?.cancel()
            let handler = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            bodyTimer = context.eventLoop.scheduleTask(in: bodyTimeout) { handler.value.0.bodyTimeUp(context: handler.value.1) }
        case .body(let buffer):
            if closing {
                drained += buffer.readableBytes
                if drained > drainLimit { context.close(promise: nil) }
            }
        case .end:
            // Only the latest request's body can be arriving.
            if !pending.isEmpty { pending[pending.count - 1].bodyEnded = true }
            bodyTimer?.cancel()
            bodyTimer = nil
            if closing {
                context.fireChannelRead(data)
                context.close(promise: nil)
                return
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // After a response that said `Connection: close`, nothing more is sent: the parser's own
        // 400 for the rest of a body it cannot frame would be a second answer to one request.
        if closing || timedOut {
            promise?.succeed(())
            context.close(promise: nil)
            return
        }
        switch unwrapOutboundIn(data) {
        case .head(var response) where response.status.code >= 200 && pending.first?.bodyEnded == false:
            early = true
            response.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(response)), promise: promise)
        case .head(var response) where response.status.code >= 200 && pending.first?.asksClose == true:
            response.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(response)), promise: promise)
        case .end:
            if early, pending.first?.bodyEnded == true {
                // The body ended while the response was written: nothing is left to read.
                let written = context.eventLoop.makePromise(of: Void.self)
                written.futureResult.cascade(to: promise)
                let channel = context.channel
                written.futureResult.whenComplete { _ in channel.close(promise: nil) }
                context.write(data, promise: written)
                return
            } else if early {
                closing = true
            } else if !pending.isEmpty {
                pending.removeFirst()
            }
            context.write(data, promise: promise)
        default:
            context.write(data, promise: promise)
        }
    }
}
