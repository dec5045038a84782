"""Generated stubs of the serving API (package quiver.serving.v1); see scripts/python-proto.sh."""
