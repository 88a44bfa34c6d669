"""The .pth reader on small files laid out byte for byte as torch.save writes them (legacy and zip),
built here from pickle opcodes because PyTorch itself is not installed."""
from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ml.torch_pickle import LEGACY_MAGIC, LEGACY_PROTOCOL, TorchPickleError, load_state_dict

STORAGE = np.arange(6, dtype="<f4")  # storage "0", shared by two tensors
COUNTER = np.array([7], dtype="<i8")  # storage "1"


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _tensor(kind: str, key: str, numel: int, offset: int, size: tuple, stride: tuple, legacy: bool) -> bytes:
    pid = [_str("storage"), _global("torch", kind), _str(key), _str("cpu"), _int(numel)] + ([b"N"] if legacy else [])
    args = _tuple(_tuple(*pid) + b"Q", _int(offset), _tuple(*map(_int, size)), _tuple(*map(_int, stride)),
                  b"\x89", _global("collections", "OrderedDict") + b")R")
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _state_pickle(legacy: bool) -> bytes:
    """{'w': 2x3 transposed view, 'b': 2 elements at offset 4 of the same storage, 'n': int64 scalar}."""
    items = (_str("w") + _tensor("FloatStorage", "0", 6, 0, (2, 3), (1, 2), legacy)
             + _str("b") + _tensor("FloatStorage", "0", 6, 4, (2,), (1,), legacy)
             + _str("n") + _tensor("LongStorage", "1", 1, 0, (), (), legacy))
    return b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + items + b"u."


def _legacy_file(path: Path, state: bytes | None = None) -> Path:
    header = [pickle.dumps(LEGACY_MAGIC, protocol=2), pickle.dumps(LEGACY_PROTOCOL, protocol=2),
              pickle.dumps({"protocol_version": LEGACY_PROTOCOL, "little_endian": True,
                            "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)]
    body = state if state is not None else _state_pickle(legacy=True)
    storages = b"".join(struct.pack("<q", a.size) + a.tobytes() for a in (STORAGE, COUNTER))
    path.write_bytes(b"".join(header) + body + pickle.dumps(["0", "1"], protocol=2) + storages)
    return path


def _zip_file(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", _state_pickle(legacy=False))
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", STORAGE.tobytes())
        archive.writestr("archive/data/1", COUNTER.tobytes())
        archive.writestr("archive/version", "3\n")
    return path


@pytest.mark.parametrize("make", [_legacy_file, _zip_file], ids=["legacy", "zip"])
def test_tensors_keep_their_strides_offsets_and_types(make, tmp_path):
    state = load_state_dict(make(tmp_path / "small.pth"))
    assert list(state) == ["w", "b", "n"]
    assert np.array_equal(state["w"], [[0, 2, 4], [1, 3, 5]]) and state["w"].dtype == np.float32
    assert np.array_equal(state["b"], [4, 5])
    assert state["n"].shape == () and state["n"] == 7 and state["n"].dtype == np.int64
    assert state["w"].flags.c_contiguous and state["w"].flags.writeable


def test_a_truncated_file_is_refused_by_name(tmp_path):
    path = _legacy_file(tmp_path / "cut.pth")
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(TorchPickleError, match=r"cut\.pth.*truncated"):
        load_state_dict(path)


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", b"\x80\x02J\x01\x00\x00\x00."])
def test_other_files_are_refused_by_name(content, tmp_path):
    path = tmp_path / "other.pth"
    path.write_bytes(content)
    with pytest.raises(TorchPickleError, match=r"other\.pth"):
        load_state_dict(path)


def test_a_zip_that_torch_did_not_write_is_refused(tmp_path):
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(TorchPickleError, match=r"photos\.zip.*data\.pkl"):
        load_state_dict(path)


def test_a_file_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    hostile = b"\x80\x02" + _global("os", "system") + _tuple(_str(f"touch {marker}")) + b"R."
    path = _legacy_file(tmp_path / "hostile.pth", state=hostile)
    with pytest.raises(TorchPickleError, match=r"hostile\.pth.*os\.system"):
        load_state_dict(path)
    assert not marker.exists()
