"""Generated from proto/quiver/serving/v1/serving.proto by scripts/python-proto.sh; do not edit.

serving_pb2 holds the messages, serving_pb2_grpc the FeatureServing stub.
"""
