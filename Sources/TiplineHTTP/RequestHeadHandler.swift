import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import NIOHTTP1

/// What the version and the `Host` field of a request mean, read before the HTTP/1.1 codec drops
/// the version and folds `Host` into the authority (Hummingbird sees only `HTTPRequest`):
///
/// - HTTP/1.0: the connection closes after the answer, and the answer says `Connection: close`.
///   HTTP/1.0 connections are not persistent unless both sides agree to keep them; this server
///   does not, so a client such as `ab` or an old gateway, which reads the answer up to the close,
///   is not left waiting for the idle timeout. `Expect` is removed: a server MUST ignore a
///   `100-continue` expectation in an HTTP/1.0 request (RFC 9110 10.1.1), and such a client would
///   not understand a `100 Continue`.
/// - `CONNECT` (this is no proxy: it gets a 404 or 405 like any unknown route): the connection
///   closes after the answer. NIO's encoder writes every answer to a `CONNECT` without a body or
///   a length, as a tunnel's 2xx must be, so only the close can tell the client where it ends.
/// - HTTP/1.1 without a `Host` field, with more than one, or with a value that is no host: the
///   request is marked (`hostProblemField`, which a client cannot send: one it sends is removed)
///   and `HostRuleMiddleware` answers it 400, as RFC 9112 3.2 requires.
/// - A request the HTTP parser refuses (garbled headers, conflicting lengths) is answered 400 by
///   Hummingbird, before any route or middleware, with no body: the answer is given the JSON error
///   every other refusal has (`malformed_request`, saying what the parser found) as it passes here,
///   and the request is counted in `tipline_http_requests_total` with route `unparsed`, so that
///   such a flood shows.
final class RequestHeadHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// The parser's error, until the 400 that answers it has passed.
    private var parserError: HTTPParserError?

    /// The mark of a request whose `Host` breaks the rule; its value says how.
    static let hostProblemField = "tipline-host-problem"

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        head.headers.remove(name: Self.hostProblemField)
        let http10 = head.version.major == 1 && head.version.minor == 0
        if http10 { head.headers.remove(name: "expect") }
        if http10 || head.method == .CONNECT { head.headers.replaceOrAdd(name: "connection", value: "close") }
        if !http10, let problem = Self.hostProblem(head.headers["host"]) {
            head.headers.add(name: Self.hostProblemField, value: problem)
        }
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HTTPParserError {
            Counter(label: HTTPMetricName.requests, dimensions: [("route", "unparsed"), ("method", "-"), ("status", "400")]).increment()
            parserError = error
        }
        context.fireErrorCaught(error)
    }

    /// Hummingbird's answer to a parser error (a 400 head with `Content-Length: 0`, then its end)
    /// gets the JSON error body; every other answer passes as it is (those of the routes carry
    /// their JSON already).
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard let error = parserError, case .head(var head) = unwrapOutboundIn(data), head.status == .badRequest,
              head.headers["content-length"] == ["0"],
              let body = try? JSONBody.bytes(APIError.malformed("the request is not HTTP/1.1 as RFC 9112 writes it: "
                  + Self.describe(error) + "; the connection closes").envelope)
        else {
            context.write(data, promise: promise)
            return
        }
        parserError = nil
        head.headers.replaceOrAdd(name: "content-length", value: String(body.count))
        head.headers.replaceOrAdd(name: "content-type", value: JSONBody.contentType)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: promise)
    }

    /// What the parser found, in words.
    static func describe(_ error: HTTPParserError) -> String {
        switch error {
        case .headerOverflow: "the header is too large"
        case .invalidContentLength: "a Content-Length that cannot be read, or one after a Transfer-Encoding"
        case .unexpectedContentLength: "a Content-Length given more than once"
        case .invalidChunkSize: "a chunk size that is no size"
        case .invalidVersion: "an HTTP version that is not HTTP/1.x, or a request line not ended by CRLF"
        case .invalidMethod: "a request line that does not start with a method"
        case .invalidURL, .invalidPath, .invalidQueryString, .invalidFragment, .invalidHost, .invalidPort: "a target that is no URL"
        case .invalidHeaderToken: "a header line that is not name: value"
        case .invalidCharactersUsed: "characters a request may not hold"
        case .lfExpected: "a line not ended by CRLF"
        // llhttp's codes NIO does not name (a Transfer-Encoding it refuses among them: one after a
        // Content-Length, or one whose last coding is not chunked) all come as `.unknown`.
        case .unknown: "a request the HTTP parser refuses, such as one with a Transfer-Encoding after a Content-Length or one whose last coding is not chunked"
        default: "a request line or header the HTTP parser could not read (\(error))"
        }
    }

    /// What a host and port may be written with: a URI's unreserved, sub-delimiter and
    /// percent-encoding characters, `:` and the brackets of an IPv6 address.
    static let hostCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%:[]".unicodeScalars)

    /// What is wrong with an HTTP/1.1 request's `Host` lines, if anything. An empty value is allowed
    /// (a target without an authority); otherwise a host as a URI writes it (a name, an address, an
    /// IPv6 address in brackets) and an optional port.
    static func hostProblem(_ values: [String]) -> String? {
        guard !values.isEmpty else { return "an HTTP/1.1 request must have a Host header" }
        guard values.count == 1 else { return "an HTTP/1.1 request must have one Host header, not \(values.count)" }
        guard values[0].unicodeScalars.allSatisfy(hostCharacters.contains) else { return "the Host header is not a host and port" }
        return nil
    }
}

/// Answers 400 `malformed_request` to a request `RequestHeadHandler` marked for its `Host`.
struct HostRuleMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let problem = request.headers[HTTPField.Name(RequestHeadHandler.hostProblemField)!] {
            throw APIError.malformed(problem)
        }
        return try await next(request, context)
    }
}

/// Hummingbird's HTTP/1.1 child channel with `RequestHeadHandler` put between the HTTP/1 decoder
/// and the codec that turns its parts into `HTTPRequest`s (`additionalChannelHandlers` go after
/// that codec, where the version is gone).
struct IntakeHTTP1Channel: ServerChildChannel {
    let http1: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try pipeline.addHandler(RequestHeadHandler(), position: .after(decoder))
            return value
        }
    }

    func handle(value: HTTP1Channel.Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// `.http1(configuration:)` with `RequestHeadHandler` in the pipeline.
    static func intakeHTTP1(configuration: HTTP1Channel.Configuration) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in IntakeHTTP1Channel(http1: HTTP1Channel(responder: responder, configuration: configuration)) }
    }
}
