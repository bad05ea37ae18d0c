"""A first call to qaward from Python, with stubs generated from the contracts in proto/.

    pip install grpcio==1.85.0 grpcio-tools==1.85.0 grpcio-status==1.85.0
    python -m grpc_tools.protoc -I proto --python_out=stubs --grpc_python_out=stubs \
        proto/qaward/common/v1/common.proto proto/qaward/reviewers/v1/reviewers.proto
    PYTHONPATH=stubs python docs/examples/first_call.py 127.0.0.1:50051 "$TOKEN" [ca.crt]

It lists the reviewer registry, then makes two calls that fail and reads their errors as every
client should: the code, then ErrorInfo (reason, rule) and BadRequest (which field) from the
status details. It prints one JSON line per call (the tests read them).
"""

import json
import sys

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from qaward.reviewers.v1 import reviewers_pb2, reviewers_pb2_grpc


def error_of(error):
    """What a failed call says: its code and message, and its details decoded."""
    out = {"code": error.code().name, "message": error.details()}
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            out["reason"] = info.reason
            out["metadata"] = dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out["fields"] = [v.field for v in bad.field_violations]
    return out


def main(address, token, ca=None):
    if ca:
        with open(ca, "rb") as f:
            channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(f.read()))
    else:
        channel = grpc.insecure_channel(address)
    reviewers = reviewers_pb2_grpc.ReviewerServiceStub(channel)
    auth = [("authorization", f"Bearer {token}")]

    page = reviewers.ListReviewers(reviewers_pb2.ListReviewersRequest(page_size=10), metadata=auth)
    print(json.dumps({"call": "ListReviewers", "code": "OK", "reviewers": len(page.reviewers)}))

    for call, request in [
        # A name that names nothing: NOT_FOUND.
        ("GetReviewer missing", reviewers_pb2.GetReviewerRequest(name="reviewers/NO-SUCH-ONE")),
        # A name that is not a reviewer's name at all: INVALID_ARGUMENT naming the field.
        ("GetReviewer malformed", reviewers_pb2.GetReviewerRequest(name="programmes/yunyang")),
    ]:
        try:
            reviewers.GetReviewer(request, metadata=auth)
            print(json.dumps({"call": call, "code": "OK"}))
        except grpc.RpcError as error:
            print(json.dumps({"call": call, **error_of(error)}, ensure_ascii=False))


if __name__ == "__main__":
    main(*sys.argv[1:])
