"""A gRPC client that is not ours: Python's grpcio (grpc-core underneath), for the whole-system
tests. It makes the calls it reads as JSON on stdin against the address in argv[1] and prints
what a grpcio user sees of each, as JSON on stdout:

    in:  [{"method": "/pkg.Service/Method", "token": "...", "messages": ["<hex>", ...],
           "client_streaming": false}, ...]
    out: [{"code": "NOT_FOUND", "details": "...", "error_info": {"reason": ..., "domain": ...,
           "metadata": {...}}, "field_violations": [{"field": ..., "description": ...}]}
          | {"code": "OK", "response": "<hex>"}, ...]

With `--list-services` instead, it prints the services the address advertises through server
reflection, asked with grpcio-reflection (which speaks grpc.reflection.v1alpha), and who may
call each method as the contracts' `qaward.common.v1.access` option tells any client.

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


def wire_fields(data):
    """The (number, value) pairs of an encoded protobuf message: varints as ints,
    length-delimited fields as bytes (no other wire types occur in the access option)."""
    i = 0

    def varint():
        nonlocal i
        shift = result = 0
        while True:
            b = data[i]
            i += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return result

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, varint()
        elif wire == 2:
            n = varint()
            yield number, data[i : i + n]
            i += n
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            raise ValueError("wire type %d" % wire)


def packed_as_fields(data):
    """A packed run of varints re-tagged as field 1, so that wire_fields reads it."""
    out, start = bytearray(), 0
    for i, b in enumerate(data):
        if b < 0x80:
            out += b"\x08" + data[start : i + 1]
            start = i + 1
    return bytes(out)


ACCESS_FIELD = 72301  # qaward.common.v1.access on google.protobuf.MethodOptions


def access_of(method, role_names):
    """Who may call `method` (a MethodDescriptorProto), from its options' access extension,
    which a client without qaward's generated code sees as an unknown field."""
    for number, value in wire_fields(method.options.SerializeToString()):
        if number != ACCESS_FIELD:
            continue
        roles, records = [], ""
        for n, v in wire_fields(value):
            if n == 1 and isinstance(v, int):
                roles.append(role_names[v])
            elif n == 1:  # packed: the varints one after another
                roles.extend(role_names[r] for _, r in wire_fields(packed_as_fields(v)))
            elif n == 2:
                records = v.decode()
        return {"roles": roles, "records": records}
    return None


def list_services(target):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    with grpc.insecure_channel(target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = sorted(database.get_services())
        # A descriptor for one method's file, resolved through reflection as a client would.
        files = [database.FindFileContainingSymbol(s).name for s in services]
        common = database.FindFileContainingSymbol("qaward.common.v1.Role")
        role_enum = next(e for e in common.enum_type if e.name == "Role")
        role_names = {v.number: v.name for v in role_enum.value}
        access = {}
        for service in services:
            if not service.startswith("qaward."):
                continue
            proto = database.FindFileContainingSymbol(service)
            for s in proto.service:
                if proto.package + "." + s.name != service:
                    continue
                for m in s.method:
                    access["/%s/%s" % (service, m.name)] = access_of(m, role_names)
    json.dump({"services": services, "files": files, "access": access}, sys.stdout)


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
