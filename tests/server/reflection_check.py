#!/usr/bin/python3
"""A real gRPC reflection + health client, as grpcurl would use them.

Debian's python3-grpcio has no grpc_reflection/grpc_health modules, so this
compiles the reflection and health protos from the grpc-proto package with
protoc and speaks both services with grpcio's generic calls. It then calls
GetInfo through message classes built only from the descriptors the server
sent, proving a client needs no .proto file.

Prints one line per finding; exits non-zero on any failure.
"""
import argparse
import os
import shutil
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--protoc", required=True)
    ap.add_argument("--proto_dir", required=True)  # /usr/share/grpc-proto
    ap.add_argument("--work_dir", required=True)
    args = ap.parse_args()

    # Flat copies: generated modules must not live under a "grpc" package,
    # which would shadow grpcio itself.
    src = os.path.join(args.work_dir, "src")
    gen = os.path.join(args.work_dir, "gen")
    os.makedirs(src, exist_ok=True)
    os.makedirs(gen, exist_ok=True)
    shutil.copy(os.path.join(args.proto_dir, "grpc/reflection/v1alpha/reflection.proto"),
                os.path.join(src, "es_reflection.proto"))
    shutil.copy(os.path.join(args.proto_dir, "grpc/health/v1/health.proto"),
                os.path.join(src, "es_health.proto"))
    subprocess.check_call([args.protoc, "-I", src, "--python_out", gen,
                           "es_reflection.proto", "es_health.proto"])
    sys.path.insert(0, gen)

    import grpc
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    import es_health_pb2 as health
    import es_reflection_pb2 as refl

    channel = grpc.insecure_channel("127.0.0.1:%d" % args.port)
    grpc.channel_ready_future(channel).result(timeout=10)
    info = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=refl.ServerReflectionRequest.SerializeToString,
        response_deserializer=refl.ServerReflectionResponse.FromString)
    requests = [
        refl.ServerReflectionRequest(list_services=""),
        refl.ServerReflectionRequest(file_containing_symbol="embedsearch.v1.ImageSearch"),
    ]
    services = []
    files = []
    for response in info(iter(requests), timeout=10):
        kind = response.WhichOneof("message_response")
        if kind == "list_services_response":
            services = [s.name for s in response.list_services_response.service]
        elif kind == "file_descriptor_response":
            files.extend(response.file_descriptor_response.file_descriptor_proto)
        elif kind == "error_response":
            print("reflection error", response.error_response.error_message)
            return 1
    for s in services:
        print("service", s)
    pool = descriptor_pool.DescriptorPool()
    for raw in files:
        fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
        pool.Add(fd)
        for svc in fd.service:
            for m in svc.method:
                print("method %s.%s.%s" % (fd.package, svc.name, m.name))

    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health.HealthCheckRequest.SerializeToString,
        response_deserializer=health.HealthCheckResponse.FromString)
    status = check(health.HealthCheckRequest(service=""), timeout=10)
    print("health", health.HealthCheckResponse.ServingStatus.Name(status.status))

    # Call GetInfo with classes built from the reflected descriptors only.
    factory = message_factory.MessageFactory(pool)
    req_cls = factory.GetPrototype(pool.FindMessageTypeByName("embedsearch.v1.GetInfoRequest"))
    resp_cls = factory.GetPrototype(pool.FindMessageTypeByName("embedsearch.v1.GetInfoResponse"))
    get_info = channel.unary_unary(
        "/embedsearch.v1.ImageSearch/GetInfo",
        request_serializer=req_cls.SerializeToString,
        response_deserializer=resp_cls.FromString)
    reply = get_info(req_cls(), timeout=10)
    print("GetInfo gallery_size=%d dim=%d" % (reply.gallery_size, reply.dim))

    ok = ("embedsearch.v1.ImageSearch" in services and
          "grpc.health.v1.Health" in services and
          status.status == health.HealthCheckResponse.SERVING and
          reply.dim > 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
