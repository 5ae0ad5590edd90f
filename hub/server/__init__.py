"""The gRPC service: servicers, interceptors and the server's lifecycle."""
