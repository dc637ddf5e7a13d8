"""A stand-in for the k3s multicall binary, for tests only (never shipped in the collection)."""
