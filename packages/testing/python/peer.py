"""Python grpcio peer for the Switchyard TestService.

A third, independent gRPC implementation (C-core, via grpcio) with the same
semantics as packages/testing/src/behavior.ts, so tests can check Switchyard
against a foreign server and a foreign client. Message classes are built at
run time from the FileDescriptorSet that `buf build` writes, so no protoc is
needed.

    peer.py serve --backend NAME --descriptor-set FILE
        Binds 127.0.0.1:0, prints the port as one line on stdout, and serves
        until SIGTERM or until stdin closes (so it never outlives its parent).

    peer.py call --target HOST:PORT --method Unary --json '{"payload": "hi"}' \
            [--metadata key=value ...] [--timeout SECONDS] --descriptor-set FILE
        Makes one call. --json is a request object, or for ClientStream and
        Bidi an array of them (proto3 JSON, camelCase or snake_case). Prints
        one line {"response": {...}} per response, then {"status": {"code": N,
        "details": "..."}}.
"""

import argparse
import json
import signal
import sys
import threading
from concurrent import futures

import grpc
from google.protobuf import json_format

from descriptors import message_classes

SERVICE = "switchyard.testing.v1.TestService"
METHODS = ("Unary", "ServerStream", "ClientStream", "Bidi")
STATUS_BY_CODE = {status.value[0]: status for status in grpc.StatusCode}


def load_messages(path):
    return message_classes(path, "switchyard.testing.v1", ("TestRequest", "TestResponse"))


def filler(size):
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def requested_status(code):
    # Same rule as behavior.ts: codes outside 1..16 fail with UNKNOWN.
    return STATUS_BY_CODE[code] if 1 <= code <= 16 else grpc.StatusCode.UNKNOWN


class Behavior:
    """What a request asks for; mirrors behavior.ts."""

    def __init__(self, backend, response_class):
        self.backend = backend
        self.response_class = response_class

    def handlers(self, request_class):
        def handler(kind, method):
            return kind(
                method,
                request_deserializer=request_class.FromString,
                response_serializer=self.response_class.SerializeToString,
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Unary": handler(grpc.unary_unary_rpc_method_handler, self.unary),
                "ServerStream": handler(grpc.unary_stream_rpc_method_handler, self.server_stream),
                "ClientStream": handler(grpc.stream_unary_rpc_method_handler, self.client_stream),
                "Bidi": handler(grpc.stream_stream_rpc_method_handler, self.bidi),
            },
        )

    def unary(self, request, context):
        call = Call(context)
        call.process(request)
        return self.respond(request, call, 0, 1)

    def server_stream(self, request, context):
        call = Call(context)
        call.process(request)
        yield self.respond(request, call, 0, 1)
        for sequence in range(1, max(request.response_count, 1)):
            call.pause(request.delay_ms)
            yield self.respond(request, call, sequence, 1)

    def client_stream(self, requests, context):
        call = Call(context)
        received = 0
        last = None
        for request in requests:
            received += 1
            call.process(request)
            last = request
        return self.respond(last, call, 0, received)

    def bidi(self, requests, context):
        call = Call(context)
        received = 0
        for request in requests:
            received += 1
            call.process(request)
            yield self.respond(request, call, received - 1, received)

    def respond(self, request, call, sequence, received_count):
        response = self.response_class(
            backend=self.backend, sequence=sequence, received_count=received_count
        )
        if request is not None:
            response.payload = request.payload
            response.filler = filler(request.response_size)
            response.metadata.update(call.echoed_metadata(request.echo_metadata))
        return response


class Call:
    """One RPC's context: cancellable waits, failures and metadata."""

    def __init__(self, context):
        self.context = context
        self.ended = threading.Event()
        # Runs when the RPC terminates for any reason, including cancellation
        # by the client or its deadline, which is what ends a wait early.
        if not context.add_callback(self.ended.set):
            self.ended.set()

    def pause(self, delay_ms):
        if delay_ms > 0 and self.ended.wait(delay_ms / 1000):
            self.context.abort(grpc.StatusCode.CANCELLED, "call ended during delay")

    def process(self, request):
        self.pause(request.delay_ms)
        if request.status_code != 0:
            self.context.abort(requested_status(request.status_code), request.status_message)

    def echoed_metadata(self, keys):
        values = {}
        for key, value in self.context.invocation_metadata():
            values.setdefault(key.lower(), []).append(value)
        echoed = {}
        for key in (k.lower() for k in keys):
            if not key.endswith("-bin") and key in values:
                echoed[key] = ", ".join(values[key])
        return echoed


def serve(args):
    request_class, response_class = load_messages(args.descriptor_set)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    server.add_generic_rpc_handlers((Behavior(args.backend, response_class).handlers(request_class),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())

    def watch_stdin():
        sys.stdin.read()
        stopping.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    # A timed wait keeps the main thread returning to the interpreter, where
    # the SIGTERM handler runs.
    while not stopping.wait(0.1):
        pass
    server.stop(grace=0.5).wait()


def call(args):
    request_class, response_class = load_messages(args.descriptor_set)
    body = json.loads(args.json)
    requests = [json_format.ParseDict(item, request_class()) for item in (body if isinstance(body, list) else [body])]
    if args.method in ("Unary", "ServerStream") and len(requests) != 1:
        sys.exit(f"{args.method} takes exactly one request, got {len(requests)}")
    metadata = [tuple(item.split("=", 1)) for item in args.metadata]
    path = f"/{SERVICE}/{args.method}"
    serializers = dict(
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )

    def emit(line):
        print(json.dumps(line), flush=True)

    with grpc.insecure_channel(args.target) as channel:
        try:
            if args.method == "Unary":
                responses = [channel.unary_unary(path, **serializers)(requests[0], metadata=metadata, timeout=args.timeout)]
            elif args.method == "ServerStream":
                responses = channel.unary_stream(path, **serializers)(requests[0], metadata=metadata, timeout=args.timeout)
            elif args.method == "ClientStream":
                responses = [channel.stream_unary(path, **serializers)(iter(requests), metadata=metadata, timeout=args.timeout)]
            else:
                responses = channel.stream_stream(path, **serializers)(iter(requests), metadata=metadata, timeout=args.timeout)
            for response in responses:
                emit({"response": json_format.MessageToDict(response)})
            emit({"status": {"code": 0, "details": ""}})
        except grpc.RpcError as error:
            emit({"status": {"code": error.code().value[0], "details": error.details() or ""}})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--descriptor-set", required=True, help="FileDescriptorSet from `buf build`")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", parents=[common])
    serve_parser.add_argument("--backend", required=True)
    call_parser = commands.add_parser("call", parents=[common])
    call_parser.add_argument("--target", required=True)
    call_parser.add_argument("--method", required=True, choices=METHODS)
    call_parser.add_argument("--json", required=True)
    call_parser.add_argument("--metadata", action="append", default=[], help="key=value; repeatable")
    call_parser.add_argument("--timeout", type=float, default=None, help="seconds")
    args = parser.parse_args()
    serve(args) if args.command == "serve" else call(args)


if __name__ == "__main__":
    main()
