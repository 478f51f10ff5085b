import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// HTTP/1.1's keep-alive rules as HTTP/1.0 clients expect them: a request that does not ask to keep
/// the connection (HTTP/1.0 without `Connection: keep-alive`, or any request with
/// `Connection: close`) has its connection closed after its answer.
///
/// Hummingbird closes a connection after an answer only when the request says `Connection: close`;
/// the HTTP version is gone once the request is converted to HTTP types, so an HTTP/1.0 request
/// kept its connection open until the idle timeout. This handler sits right after NIO's HTTP/1
/// decoder, where the version is still known, and states the close in the request's headers.
final class HTTP1KeepAliveHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(var head) = unwrapInboundIn(data), !head.isKeepAlive {
            head.headers.replaceOrAdd(name: "connection", value: "close")
            context.fireChannelRead(wrapInboundOut(.head(head)))
            return
        }
        context.fireChannelRead(data)
    }
}

/// Hummingbird's HTTP/1 child channel with `HTTP1KeepAliveHandler` after the HTTP/1 decoder.
struct KeepAliveRespectingHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let base: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let decoder = try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try channel.pipeline.syncOperations.addHandler(HTTP1KeepAliveHandler(), position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
