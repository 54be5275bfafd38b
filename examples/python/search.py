#!/usr/bin/env python3
"""Search embedsearch from Python with grpcio.

Generate the message classes once (protoc is Debian's protobuf-compiler):

    protoc -I proto --python_out=/tmp/es proto/embedsearch/v1/search.proto

then run, with Debian's python3-grpcio:

    PYTHONPATH=/tmp/es /usr/bin/python3 examples/python/search.py \
        --server localhost:50051 --k 5 shirt.png

The service stub is made with channel.unary_unary, so only the message
classes are generated and grpcio-tools is not needed; with grpcio-tools,
search_pb2_grpc.ImageSearchStub(channel).Search does the same.
"""
import argparse
import sys

import grpc
from embedsearch.v1 import search_pb2


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="localhost:50051")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("images", nargs="+", help="PNG, JPEG or PGM files")
    args = parser.parse_args()

    channel = grpc.insecure_channel(args.server)
    search = channel.unary_unary(
        "/embedsearch.v1.ImageSearch/Search",
        request_serializer=search_pb2.SearchRequest.SerializeToString,
        response_deserializer=search_pb2.SearchResponse.FromString)

    for path in args.images:
        with open(path, "rb") as f:
            request = search_pb2.SearchRequest(image=f.read(), k=args.k)
        try:
            response = search(request, timeout=10)
        except grpc.RpcError as e:
            print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
            return 1
        print(f"{path} (model {response.model_version})")
        for rank, hit in enumerate(response.hits, 1):
            print(f"{rank:4d}  id {hit.id:6d}  {hit.label_name:12s}  "
                  f"distance {hit.distance:.4f}  {hit.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
