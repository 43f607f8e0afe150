"""A file's identity: the sha256 of its bytes as stored (compressed or not), streamed in
chunks from its filesystem, so a file of any size hashes in constant memory."""

from __future__ import annotations

import hashlib

import pyarrow.fs as pafs

CHUNK_BYTES = 8 << 20


def sha256_of(filesystem: pafs.FileSystem, path: str) -> str:
    digest = hashlib.sha256()
    with filesystem.open_input_stream(path, compression=None) as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
