import NIOCore

/// Closes a connection whose client stops reading: responses that stay unsent (the channel not
/// writable) for `timeout`. Hummingbird's idle timeout closes a connection that sends nothing, but
/// not one with a response in progress, so a client that sent requests and never read the answers
/// held its connection, and the server's shutdown, for as long as it liked.
final class StalledReaderHandler: ChannelInboundHandler, RemovableChannelHandler {
    // Only writability is looked at; whatever is read passes through untouched.
    typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private var closing: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            closing?.cancel()
            closing = nil
        } else if closing == nil {
            let channel = context.channel
            closing = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing?.cancel()
        closing = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        closing?.cancel()
        closing = nil
    }
}
