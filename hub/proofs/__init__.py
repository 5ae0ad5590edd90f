"""Receipt proofs any holder can check offline: the signed format, the Merkle tree and the checker.

No hub internals: the Python client and `hub receipts verify` use this package in a reviewer's office."""
