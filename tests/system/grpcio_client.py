"""A gRPC client that is not ours: Python's grpcio (grpc-core underneath), for the whole-system
tests. It makes the calls it reads as JSON on stdin against the address in argv[1] and prints
what a grpcio user sees of each, as JSON on stdout:

    in:  [{"method": "/pkg.Service/Method", "token": "...", "messages": ["<hex>", ...],
           "client_streaming": false}, ...]
    out: [{"code": "NOT_FOUND", "details": "...", "error_info": {"reason": ..., "domain": ...,
           "metadata": {...}}, "field_violations": [{"field": ..., "description": ...}]}
          | {"code": "OK", "response": "<hex>"}, ...]

With `--list-services` instead, it prints the services the address advertises through server
reflection, asked with grpcio-reflection (which speaks grpc.reflection.v1alpha).

Messages travel as raw bytes (the test encodes them), so no generated stubs are needed; the
error details are decoded with grpcio-status and googleapis-common-protos, as a client author
would.
"""

import json
import sys

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def outcome(error):
    out = {"code": error.code().name, "details": error.details()}
    status = rpc_status.from_call(error)
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                out["error_info"] = {
                    "reason": info.reason,
                    "domain": info.domain,
                    "metadata": dict(info.metadata),
                }
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                out["field_violations"] = [
                    {"field": v.field, "description": v.description}
                    for v in bad.field_violations
                ]
    return out


def list_services(target):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    with grpc.insecure_channel(target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = sorted(database.get_services())
        # A descriptor for one method's file, resolved through reflection as a client would.
        files = [database.FindFileContainingSymbol(s).name for s in services]
    json.dump({"services": services, "files": files}, sys.stdout)


def main():
    target = sys.argv[1]
    if sys.argv[2:] == ["--list-services"]:
        list_services(target)
        return
    calls = json.load(sys.stdin)
    results = []
    with grpc.insecure_channel(target) as channel:
        for call in calls:
            metadata = []
            if call.get("token"):
                metadata.append(("authorization", "Bearer " + call["token"]))
            messages = [bytes.fromhex(m) for m in call["messages"]]
            try:
                if call.get("client_streaming"):
                    method = channel.stream_unary(call["method"])
                    response = method(iter(messages), metadata=metadata, timeout=30)
                else:
                    method = channel.unary_unary(call["method"])
                    response = method(messages[0], metadata=metadata, timeout=30)
                results.append({"code": "OK", "response": response.hex()})
            except grpc.RpcError as error:
                results.append(outcome(error))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
