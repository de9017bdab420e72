"""A Python grpcio server reporting the time remaining before each call's deadline, as grpcio
computed it from grpc-timeout: DeadlineProbe.Remaining(google.protobuf.Empty) returns
google.protobuf.DoubleValue milliseconds, -1 without a deadline.

Prints its port, then serves until stdin closes (so it cannot outlive the test process)."""

import struct
import sys
from concurrent import futures

import grpc


def remaining(_request, context):
    left = context.time_remaining()
    # Without a deadline grpcio reports None or (1.51) the seconds left to its "infinite future",
    # ~9.2e18; no real deadline is 30 years away.
    ms = -1.0 if left is None or left > 1e9 else left * 1000
    # DoubleValue: field 1, wire type 1 (64-bit), little-endian IEEE 754.
    return struct.pack("<Bd", 0x09, ms)


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "switchyard.deadline.test.DeadlineProbe",
        {"Remaining": grpc.unary_unary_rpc_method_handler(remaining)},
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(0)


if __name__ == "__main__":
    main()
