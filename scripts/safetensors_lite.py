"""A small, defensive reader/writer for the safetensors format (no dependencies but numpy).

Format: 8-byte little-endian unsigned header length N, N bytes of UTF-8 JSON
``{name: {"dtype": str, "shape": [int...], "data_offsets": [begin, end]}, "__metadata__": {...}}``,
then the data buffer; offsets are relative to the start of the data buffer.

Every size is validated against the file size *before* anything is allocated, so a corrupt or
hostile file gives a ``ValueError`` with a message, never a crash or a huge allocation.
Tensors are returned as numpy arrays in native byte order; BF16 is widened to float32
(exactly), everything else keeps its dtype.

Used by scripts/export_videomae.py, test/tools/reference.py and test/tools/make_checkpoint.py.
"""

import json
import os
import struct

import numpy as np

# safetensors dtype -> (numpy little-endian dtype, itemsize)
DTYPES = {
    "F64": ("<f8", 8),
    "F32": ("<f4", 4),
    "F16": ("<f2", 2),
    "BF16": ("<u2", 2),  # converted to float32 after reading
    "I64": ("<i8", 8),
    "I32": ("<i4", 4),
    "I16": ("<i2", 2),
    "I8": ("i1", 1),
    "U64": ("<u8", 8),
    "U32": ("<u4", 4),
    "U16": ("<u2", 2),
    "U8": ("u1", 1),
    "BOOL": ("u1", 1),  # validated to 0/1 and turned into np.bool_
}

# The reference implementation refuses headers above 100 MB; so do we.
MAX_HEADER_BYTES = 100 * 1000 * 1000


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError("duplicate key %r in safetensors header" % (k,))
        out[k] = v
    return out


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def read_header(path):
    """Parse and validate the header. Returns (entries, metadata, data_start, data_size).

    entries: dict name -> (dtype_str, shape_tuple, begin, end) with offsets relative to the
    data buffer, all validated.
    """
    try:
        file_size = os.path.getsize(path)
    except OSError as e:
        raise ValueError("cannot read %s: %s" % (path, e))
    name = os.path.basename(path)
    if file_size < 8:
        raise ValueError("%s: not a safetensors file (%d bytes, shorter than the 8-byte header length)"
                         % (name, file_size))
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > file_size - 8:
            raise ValueError("%s: header length %d exceeds the file size (%d bytes)" % (name, n, file_size))
        if n > MAX_HEADER_BYTES:
            raise ValueError("%s: header length %d is unreasonably large" % (name, n))
        if n < 2:
            raise ValueError("%s: header length %d is too small" % (name, n))
        raw = f.read(n)
    if len(raw) != n:
        raise ValueError("%s: truncated header" % name)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ValueError("%s: header is not valid UTF-8 JSON (%s)" % (name, str(e).splitlines()[0]))
    if not isinstance(header, dict):
        raise ValueError("%s: header is not a JSON object" % name)

    data_start = 8 + n
    data_size = file_size - data_start
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise ValueError("%s: __metadata__ is not an object" % name)

    entries = {}
    for key, info in header.items():
        where = "%s: tensor %r" % (name, key)
        if not isinstance(info, dict):
            raise ValueError("%s: entry is not an object" % where)
        dtype = info.get("dtype")
        shape = info.get("shape")
        offsets = info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise ValueError("%s: unsupported dtype %r" % (where, dtype))
        if not isinstance(shape, list) or not all(_is_int(d) for d in shape):
            raise ValueError("%s: shape must be a list of integers, got %r" % (where, shape))
        if any(d < 0 for d in shape):
            raise ValueError("%s: negative dimension in shape %r" % (where, shape))
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(_is_int(o) for o in offsets)):
            raise ValueError("%s: data_offsets must be [begin, end], got %r" % (where, offsets))
        begin, end = offsets
        if begin < 0 or end < begin or end > data_size:
            raise ValueError("%s: data_offsets [%d, %d] out of range (data section is %d bytes)"
                             % (where, begin, end, data_size))
        count = 1
        for d in shape:
            count *= d  # python ints: no overflow
        nbytes = count * DTYPES[dtype][1]
        if nbytes != end - begin:
            raise ValueError("%s: shape %r with dtype %s needs %d bytes but data_offsets span %d"
                             % (where, shape, dtype, nbytes, end - begin))
        entries[key] = (dtype, tuple(shape), begin, end)

    spans = sorted((b, e, k) for k, (_, _, b, e) in entries.items())
    prev_end, prev_key = 0, None
    for b, e, k in spans:
        if b < prev_end:
            raise ValueError("%s: data of tensors %r and %r overlap" % (name, prev_key, k))
        if e > b:
            prev_end, prev_key = e, k
    return entries, metadata, data_start, data_size


def _decode(buf, dtype, shape, where):
    npdtype = DTYPES[dtype][0]
    arr = np.frombuffer(buf, dtype=npdtype)
    if dtype == "BF16":
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    elif dtype == "BOOL":
        if arr.size and arr.max() > 1:
            raise ValueError("%s: BOOL data contains values other than 0/1" % where)
        arr = arr.astype(np.bool_)
    else:
        arr = arr.astype(np.dtype(npdtype).newbyteorder("="), copy=False)
    return arr.reshape(shape)


def load_file(path, names=None):
    """Load tensors from a safetensors file as a dict of numpy arrays (writable, native order).

    names: optional iterable of tensor names to load (others are skipped; a missing one raises).
    """
    entries, _meta, data_start, _size = read_header(path)
    if names is not None:
        names = list(names)
        missing = [k for k in names if k not in entries]
        if missing:
            raise ValueError("%s: tensors not found: %s" % (os.path.basename(path), ", ".join(missing)))
    else:
        names = list(entries)
    out = {}
    with open(path, "rb") as f:
        for key in names:
            dtype, shape, begin, end = entries[key]
            buf = bytearray(end - begin)  # bounded by the file size (validated above)
            f.seek(data_start + begin)
            got = f.readinto(buf)
            if got != end - begin:
                raise ValueError("%s: truncated data for tensor %r" % (os.path.basename(path), key))
            out[key] = _decode(buf, dtype, shape, "%s: tensor %r" % (os.path.basename(path), key))
    return out


def load_metadata(path):
    return read_header(path)[1]


# --------------------------------------------------------------------------------------------
# Writing

_NP_TO_ST = {
    np.dtype("float64"): "F64", np.dtype("float32"): "F32", np.dtype("float16"): "F16",
    np.dtype("int64"): "I64", np.dtype("int32"): "I32", np.dtype("int16"): "I16",
    np.dtype("int8"): "I8", np.dtype("uint8"): "U8", np.dtype("bool"): "BOOL",
}


def _header_bytes(specs, metadata):
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for name, dtype, shape in specs:
        if dtype not in DTYPES:
            raise ValueError("unsupported dtype %r" % dtype)
        count = 1
        for d in shape:
            count *= int(d)
        nbytes = count * DTYPES[dtype][1]
        header[name] = {"dtype": dtype, "shape": [int(d) for d in shape],
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((-len(raw)) % 8)  # pad with spaces so the data starts 8-byte aligned
    return raw


def _to_le_bytes(arr, dtype):
    if dtype == "BF16":
        # arr is float32: round to nearest even into the top 16 bits
        a = np.ascontiguousarray(arr, dtype=np.float32).view(np.uint32)
        rounding = ((a >> 16) & 1) + 0x7FFF
        return ((a + rounding) >> 16).astype("<u2").tobytes()
    if dtype == "BOOL":
        return np.ascontiguousarray(arr, dtype=np.uint8).tobytes()
    return np.ascontiguousarray(arr, dtype=DTYPES[dtype][0]).tobytes()


def write_streaming(path, specs, produce, metadata=None):
    """Write a safetensors file tensor by tensor.

    specs: list of (name, st_dtype, shape); produce(name) returns a numpy array for that
    tensor (float32 for BF16). Only one tensor is held in memory at a time.
    """
    raw = _header_bytes(specs, metadata)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name, dtype, shape in specs:
            arr = produce(name)
            if tuple(arr.shape) != tuple(int(d) for d in shape):
                raise ValueError("tensor %r: produced shape %r, declared %r" % (name, arr.shape, shape))
            f.write(_to_le_bytes(arr, dtype))
    os.replace(tmp, path)


def save_file(tensors, path, metadata=None, dtype=None):
    """Write a dict of numpy arrays. dtype: optional safetensors dtype for all float tensors."""
    specs = []
    for name, arr in tensors.items():
        st = _NP_TO_ST.get(np.asarray(arr).dtype)
        if st is None:
            raise ValueError("tensor %r: unsupported numpy dtype %s" % (name, arr.dtype))
        if dtype is not None and st in ("F64", "F32", "F16"):
            st = dtype
        specs.append((name, st, tuple(arr.shape)))
    write_streaming(path, specs, lambda n: np.asarray(tensors[n]), metadata)
