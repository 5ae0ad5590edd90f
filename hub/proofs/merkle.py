"""The Merkle tree behind batch receipts: RFC 6962 (Certificate Transparency) hashing, SHA-256.

    leaf hash  = SHA-256(0x00 || leaf data)
    node hash  = SHA-256(0x01 || left hash || right hash)

The tree over n leaves is RFC 6962's: the left subtree holds the largest power of two below n.
Built bottom-up, that is pairing each level left to right and carrying an unpaired last node up
unchanged. An inclusion proof is the RFC 9162 (section 2.1.3) audit path: the siblings from the
leaf up, skipping levels where the node has none; it is checked with the leaf's index and the tree
size alone. The whole tree travels as one byte string (every level, leaves first), so a caller
reads any key's proof off it without the hub building a thousand lists.
"""

from __future__ import annotations

from hashlib import sha256

import numpy as np

LEAF, NODE = b"\x00", b"\x01"
HASH = 32


def leaf_hash(data: bytes) -> bytes:
    return sha256(LEAF + data).digest()


def _hash_rows(rows: np.ndarray, prefix: int) -> bytes:
    """SHA-256(prefix || row) of every row of an (n, w) byte matrix, concatenated. The prefix is
    framed in by NumPy, so the loop is one slice and one hash per row (the floor in Python)."""
    n, width = rows.shape
    framed = np.empty((n, width + 1), np.uint8)
    framed[:, 0] = prefix
    framed[:, 1:] = rows
    buf, step = framed.tobytes(), width + 1
    return b"".join([sha256(buf[i : i + step]).digest() for i in range(0, n * step, step)])


def leaf_hashes(rows: np.ndarray) -> bytes:
    """The leaf hash of every row of an (n, w) byte matrix of leaf data, concatenated."""
    return _hash_rows(rows, LEAF[0])


def build_levels(leaves: bytes) -> list[bytes]:
    """Every level of the tree over ``leaves`` (concatenated 32-byte leaf hashes), leaves first, root last."""
    if not leaves or len(leaves) % HASH:
        raise ValueError("leaves: a non-empty concatenation of 32-byte hashes")
    levels = [leaves]
    level = leaves
    while len(level) > HASH:
        paired = len(level) - len(level) % (2 * HASH)
        pairs = np.frombuffer(level, np.uint8, count=paired).reshape(-1, 2 * HASH)
        level = _hash_rows(pairs, NODE[0]) + level[paired:]  # an unpaired last node moves up as it is
        levels.append(level)
    return levels


def pack(levels: list[bytes]) -> bytes:
    return b"".join(levels)


def unpack(tree: bytes, size: int) -> list[bytes]:
    """The levels of a packed tree over ``size`` leaves."""
    levels, offset, width = [], 0, size
    while True:
        levels.append(tree[offset : offset + width * HASH])
        offset += width * HASH
        if width == 1:
            break
        width = (width + 1) // 2
    if offset != len(tree) or any(len(level) % HASH for level in levels):
        raise ValueError(f"tree: {len(tree)} bytes is not a tree over {size} leaves")
    return levels


def inclusion_proof(levels: list[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index``: siblings from the bottom up."""
    proof = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling * HASH < len(level):
            proof.append(level[sibling * HASH : (sibling + 1) * HASH])
        index //= 2
    return proof


def root_from_proof(leaf: bytes, index: int, size: int, proof: list[bytes]) -> bytes | None:
    """The root that ``proof`` leads to from ``leaf`` (RFC 9162 2.1.3.2), or None if it cannot be a path."""
    if not 0 <= index < size:
        return None
    fn, sn, node = index, size - 1, leaf
    for sibling in proof:
        if sn == 0 or len(sibling) != HASH:
            return None
        if fn % 2 == 1 or fn == sn:
            node = sha256(NODE + sibling + node).digest()
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            node = sha256(NODE + node + sibling).digest()
        fn >>= 1
        sn >>= 1
    return node if sn == 0 else None
