"""Hostile and malformed input files: each is refused with one line naming it, never a traceback,
never a huge allocation, never a read outside the input's folder.

Every case is a row of ``CASES``: a small file crafted by hand (headers that declare huge arrays
come with a few bytes of data), the words its refusal must hold, and the environment it runs in.
Each row is read directly with ``read_volume``; all rows of one environment also go through the
real ``octanogan convert`` CLI in one subprocess, next to a good volume that must be converted.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import struct
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from octanogan.errors import InputError, OctanoganError
from octanogan.io import read_volume
from octanogan.io.limits import ReadLimits, check_size

REPO = Path(__file__).resolve().parents[2]
GOOD = np.linspace(0, 255, 2 * 64 * 64, dtype=np.float32).reshape(2, 64, 64)
#: The environment of the "lowered" rows: far below a real scan, far above GOOD's 8192 voxels.
LOWERED = {"OCTANOGAN_MAX_VOXELS": "100000"}
LIMIT_VARS = ("OCTANOGAN_MAX_VOXELS", "OCTANOGAN_MAX_BSCAN_PIXELS")
SECRET = bytes(range(256)) * 2  # 5 x 6 x ... bytes that must never reach an output


# --- file makers: each takes its own empty folder and returns the hostile input -----------------


def _mhd(folder: Path, lines: str, raw: bytes | None = bytes(60), name: str = "oct") -> Path:
    if raw is not None:
        (folder / f"{name}.raw").write_bytes(raw)
    header = folder / f"{name}.mhd"
    header.write_text(f"ObjectType = Image\n{lines}\n")
    return header


def _grid(dims: str = "5 6 2", ndims: int = 3, element: str = "MET_UCHAR", data: str = "oct.raw",
          extra: str = "") -> str:
    return (f"NDims = {ndims}\nDimSize = {dims}\nElementType = {element}\n{extra}"
            f"ElementDataFile = {data}")


def _secret_beside(folder: Path) -> Path:
    """A file with the right size for a 5x6x2 grid, in the folder *above* the header's."""
    secret = folder.parent / f"secret_{folder.name}.raw"
    secret.write_bytes(SECRET[:60])
    return secret


def mhd_traversal_etc(folder: Path) -> Path:
    return _mhd(folder, _grid(data="../../../../../../../../../etc/hostname"), raw=None)


def mhd_traversal_secret(folder: Path) -> Path:
    secret = _secret_beside(folder)
    return _mhd(folder, _grid(data=f"../{secret.name}"), raw=None)


def mhd_absolute_path(folder: Path) -> Path:
    return _mhd(folder, _grid(data=str(_secret_beside(folder))), raw=None)


def mhd_symlink_escape(folder: Path) -> Path:
    (folder / "link.raw").symlink_to(_secret_beside(folder))
    return _mhd(folder, _grid(data="link.raw"), raw=None)


def mhd_symlink_loop(folder: Path) -> Path:
    (folder / "loop.raw").symlink_to(folder / "loop.raw")
    return _mhd(folder, _grid(data="loop.raw"), raw=None)


def _mhd_with(**grid: object) -> Callable[[Path], Path]:
    return lambda folder: _mhd(folder, _grid(**grid))  # type: ignore[arg-type]


def mhd_bad_spacing(folder: Path) -> Path:
    return _mhd(folder, _grid(extra="ElementSpacing = 0.01 fine 0.1\n"))


def mhd_bad_header_size(folder: Path) -> Path:
    return _mhd(folder, _grid(extra="HeaderSize = a few\n"))


def mhd_bad_channels(folder: Path) -> Path:
    return _mhd(folder, _grid(extra="ElementNumberOfChannels = one\n"))


def mhd_corrupt_zlib(folder: Path) -> Path:
    return _mhd(folder, _grid(extra="CompressedData = True\n"), raw=b"x\x9c this is not deflate")


def mhd_truncated_raw(folder: Path) -> Path:
    return _mhd(folder, _grid(), raw=bytes(17))


def zlib_bomb(inflated_mib: int = 1024) -> bytes:
    """A valid zlib stream of ``inflated_mib`` MiB of zeros (about 1 KB per MiB), made quickly:
    a fully flushed deflate block of 1 MiB of zeros repeats byte for byte."""
    zeros = bytes(1 << 20)
    packer = zlib.compressobj(9)
    first = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    last = packer.compress(zeros) + packer.flush(zlib.Z_FINISH)[:-4]  # without the checksum
    adler = 1
    for _ in range(inflated_mib):
        adler = zlib.adler32(zeros, adler)
    return first + block * (inflated_mib - 2) + last + struct.pack(">I", adler)


def nifti_declaring(shape: tuple[int, ...], payload: int = 4096) -> Callable[[Path], Path]:
    """A .nii.gz whose header declares ``shape`` float32 voxels but holds only ``payload`` bytes."""
    def make(folder: Path) -> Path:
        header = nib.Nifti1Header()
        header.set_data_shape(shape)
        header.set_data_dtype(np.float32)
        header["vox_offset"] = 352
        path = folder / "declares_big.nii.gz"
        with gzip.open(path, "wb") as handle:
            handle.write(header.binaryblock + bytes(4) + bytes(payload))
        return path
    return make


def over_this_machine() -> tuple[int, int, int]:
    """A volume shape twice what this machine's memory holds (its default voxel limit), in
    B-scans of 1024 x 1024: refused here whatever the machine, by the same rule."""
    from octanogan.io.limits import default_max_voxels

    return (2 * default_max_voxels() // (1 << 20) + 1, 1024, 1024)


def npy_declaring(shape: tuple[int, ...], data: bytes = bytes(64)) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "declares.npy"
        with open(path, "wb") as handle:
            np.lib.format.write_array_header_1_0(
                handle, {"descr": "<f4", "fortran_order": False, "shape": shape})
            handle.write(data)
        return path
    return make


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> Callable[[Path], Path]:
    """A PNG whose IHDR declares ``width`` x ``height`` grey pixels, with 4 rows of data."""
    def make(folder: Path) -> Path:
        ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
        path = folder / f"declares_{width}x{height}.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                         + _png_chunk(b"IDAT", zlib.compress(bytes(width + 1) * 4))
                         + _png_chunk(b"IEND", b""))
        return path
    return make


def tiff_declaring(width: int, height: int) -> Callable[[Path], Path]:
    """A baseline TIFF (one uncompressed 8-bit strip) declaring ``width`` x ``height`` pixels."""
    def make(folder: Path) -> Path:
        tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
                (273, 4, 8), (277, 3, 1), (278, 4, height), (279, 4, (width * height) % 2**32)]
        ifd = struct.pack("<H", len(tags)) + b"".join(
            struct.pack("<HHI", tag, kind, 1)
            + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
            for tag, kind, value in tags) + struct.pack("<I", 0)
        path = folder / f"declares_{width}x{height}.tif"
        path.write_bytes(b"II*\0" + struct.pack("<I", 8 + 64) + bytes(64) + ifd)
        return path
    return make


def image_folder_over_total(folder: Path) -> Path:
    """Three 200 x 200 B-scans: each fine, together 120000 voxels, above LOWERED's limit."""
    import imageio.v3 as iio

    bscans = folder / "bscans_over_total"
    bscans.mkdir()
    for i in range(3):
        iio.imwrite(bscans / f"{i}.png", np.full((200, 200), i, np.uint8))
    return bscans


def image_folder_with_broken_image(folder: Path) -> Path:
    import imageio.v3 as iio

    bscans = folder / "bscans_broken"
    bscans.mkdir()
    iio.imwrite(bscans / "0.png", np.zeros((16, 16), np.uint8))
    (bscans / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    return bscans


def empty_npy(folder: Path) -> Path:
    (folder / "empty.npy").write_bytes(b"")
    return folder / "empty.npy"


def nan_npy(folder: Path) -> Path:
    np.save(folder / "nan.npy", np.full((2, 8, 8), np.nan, np.float32))
    return folder / "nan.npy"


def vol_declaring(width: int, n_bscans: int, depth: int) -> Callable[[Path], Path]:
    """A Heidelberg .vol whose header declares ``n_bscans`` B-scans of ``depth`` x ``width``."""
    def make(folder: Path) -> Path:
        path = folder / "declares_big.vol"
        path.write_bytes(b"HSF-OCT-103\0" + struct.pack("<3I", width, n_bscans, depth)
                         + bytes(4096))
        return path
    return make


def dicom_declaring(frames: int, rows: int, columns: int) -> Callable[[Path], Path]:
    """An OCT DICOM whose header declares ``frames`` x ``rows`` x ``columns`` 8-bit pixels,
    with 16 bytes of pixel data."""
    def make(folder: Path) -> Path:
        import vendor_files

        return vendor_files.write_dicom(folder / "declares_big.dcm", bytes(16), (frames, rows, columns))
    return make


@dataclass(frozen=True)
class Case:
    make: Callable[[Path], Path]
    problem: tuple[str, ...]  #: words the refusal must hold (besides the file's name)
    env: dict[str, str] = field(default_factory=dict)


CASES: dict[str, Case] = {
    "mhd traversal to /etc": Case(mhd_traversal_etc, ("outside the header's folder",)),
    "mhd traversal to a sibling": Case(mhd_traversal_secret, ("outside the header's folder",)),
    "mhd absolute data path": Case(mhd_absolute_path, ("absolute path",)),
    "mhd symlink escape": Case(mhd_symlink_escape, ("outside the header's folder",)),
    "mhd symlink loop": Case(mhd_symlink_loop, ("loop.raw",)),
    "mhd DimSize not integers": Case(_mhd_with(dims="5 6.5 2"), ("DimSize", "whole numbers")),
    "mhd DimSize negative": Case(_mhd_with(dims="5 -6 2"), ("DimSize", "below 1")),
    "mhd DimSize zero": Case(_mhd_with(dims="5 0 2"), ("DimSize", "below 1")),
    "mhd DimSize wrong count": Case(_mhd_with(dims="5 6"), ("DimSize", "NDims")),
    "mhd DimSize absurd": Case(_mhd_with(dims="100000 100000 100000"),
                               ("1,000,000,000,000,000 voxels", "OCTANOGAN_MAX_VOXELS")),
    "mhd unknown ElementType": Case(_mhd_with(element="MET_QUATERNION"), ("ElementType",)),
    "mhd bad channels": Case(mhd_bad_channels, ("ElementNumberOfChannels",)),
    "mhd bad spacing": Case(mhd_bad_spacing, ("ElementSpacing",)),
    "mhd bad HeaderSize": Case(mhd_bad_header_size, ("HeaderSize",)),
    "mhd corrupt zlib": Case(mhd_corrupt_zlib, ("oct.raw", "zlib")),
    "mhd truncated raw": Case(mhd_truncated_raw, ("oct.raw", "holds 17 bytes", "expected 60")),
    "nifti declaring 768 MiB": Case(nifti_declaring((512, 1024, 384)),
                                    ("201,326,592 voxels", "OCTANOGAN_MAX_VOXELS"), LOWERED),
    "nifti over the default limit": Case(nifti_declaring((2048, 2048, 2048)),
                                         ("8,589,934,592 voxels", "OCTANOGAN_MAX_VOXELS")),
    "nifti declaring more than this machine holds": Case(
        lambda folder: nifti_declaring(over_this_machine())(folder),
        ("voxels", "bytes of memory", "OCTANOGAN_MAX_VOXELS")),
    "compressed mhd declaring more than this machine holds": Case(
        lambda folder: _mhd(folder, _grid(dims=" ".join(map(str, over_this_machine()[::-1])),
                                          extra="CompressedData = True\n"), raw=zlib_bomb(4)),
        ("voxels", "bytes of memory", "OCTANOGAN_MAX_VOXELS")),
    "npy declaring 10^15 voxels": Case(npy_declaring((100000, 100000, 100000)),
                                       ("voxels", "OCTANOGAN_MAX_VOXELS")),
    "npy truncated": Case(npy_declaring((2, 64, 64), bytes(100)), ("not a readable .npy",)),
    "png over the B-scan limit": Case(png_declaring(5000, 5000),
                                      ("25,000,000 pixels", "OCTANOGAN_MAX_BSCAN_PIXELS")),
    "png decompression bomb": Case(png_declaring(100000, 100000),
                                   ("too large", "OCTANOGAN_MAX_BSCAN_PIXELS")),
    "tiff declaring 2.4 GB": Case(tiff_declaring(40000, 60000),
                                  ("2,400,000,000 pixels", "OCTANOGAN_MAX_BSCAN_PIXELS")),
    "image folder over the total": Case(image_folder_over_total,
                                        ("120,000 voxels", "OCTANOGAN_MAX_VOXELS"), LOWERED),
    "image folder with a broken image": Case(image_folder_with_broken_image,
                                             ("1.png", "not a readable image")),
    "empty file": Case(empty_npy, ("empty",)),
    "NaN-filled npy": Case(nan_npy, ("NaN",)),
}
if importlib.util.find_spec("eyepy"):  # the octanogan[vendor] extra
    CASES["heidelberg vol declaring 10^15 voxels"] = Case(
        vol_declaring(100000, 100000, 100000),
        ("1,000,000,000,000,000 voxels", "OCTANOGAN_MAX_VOXELS"))
if importlib.util.find_spec("pydicom"):
    CASES["dicom declaring 4.3 G voxels"] = Case(
        dicom_declaring(1000, 65535, 65535), ("4,294,836,225,000 voxels", "OCTANOGAN_MAX_VOXELS"))


def _make(case_id: str, root: Path) -> Path:
    folder = root / case_id.replace(" ", "_").replace("/", "_")
    folder.mkdir(parents=True)
    return CASES[case_id].make(folder)


def _set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in LIMIT_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("case_id", list(CASES))
def test_read_volume_refuses_naming_the_file(tmp_path, monkeypatch, case_id):
    case = CASES[case_id]
    _set_env(monkeypatch, case.env)
    bad = _make(case_id, tmp_path / "in")
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as info:
            read_volume(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert message.startswith(f"{bad}: ") and "\n" not in message
    for words in case.problem:
        assert words in message, message
    assert peak < 64 << 20, f"{peak} bytes allocated to refuse {bad.name}"


def _convert(inputs: list[Path], out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in LIMIT_VARS}
    environ.update(env, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "octanogan", "convert", *map(str, inputs),
                           "--out", str(out)], capture_output=True, text=True, env=environ,
                          cwd=REPO, timeout=120)


@pytest.mark.parametrize("env", [{}, LOWERED], ids=["default limits", "lowered limits"])
def test_convert_refuses_each_hostile_file_and_converts_the_good_one(tmp_path, env):
    case_ids = [c for c in CASES if CASES[c].env == env]
    bad = {c: _make(c, tmp_path / "in") for c in case_ids}
    good = tmp_path / "in" / "good.npy"
    np.save(good, GOOD)
    out = tmp_path / "out"
    result = _convert([good, *bad.values()], out, env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    refused = [line for line in result.stderr.splitlines() if line.startswith("refused: ")]
    for case_id, path in bad.items():
        lines = [line for line in refused if line.startswith(f"refused: {path}: ")]
        assert len(lines) == 1, f"{case_id}: no refusal line for {path} in\n{result.stderr}"
        for words in CASES[case_id].problem:
            assert words in lines[0], f"{case_id}: {lines[0]}"
    assert len(refused) == len(bad)
    manifest = (out / "manifest.csv").read_text().splitlines()
    assert len(manifest) == 2  # the header and the good volume only
    volumes = sorted((out / "volumes").iterdir())
    assert len(volumes) == 1
    np.testing.assert_array_equal(nib.load(volumes[0]).get_fdata(dtype=np.float32), GOOD)


def test_zlib_bomb_inflates_only_what_dimsize_declares(tmp_path, monkeypatch):
    _set_env(monkeypatch, {})
    bomb = zlib_bomb(1024)  # 1 GiB of zeros once inflated, about 1 MB on disk
    assert len(bomb) < 2 << 20
    header = _mhd(tmp_path, _grid(dims="64 64 2", extra="CompressedData = True\n"), raw=bomb)
    tracemalloc.start()
    try:
        volume = read_volume(header)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert volume.shape == (2, 64, 64) and not volume.data.any()
    assert peak < 16 << 20, f"{peak} bytes allocated for an 8 KiB volume"


def test_compressed_metaimage_round_trips(tmp_path):
    data = np.arange(2 * 6 * 5, dtype=">u2").reshape(2, 6, 5)
    header = _mhd(tmp_path, _grid(element="MET_USHORT", extra="CompressedData = True\n"
                                  "BinaryDataByteOrderMSB = True\nHeaderSize = 3\n"),
                  raw=b"pad" + zlib.compress(data.tobytes()))
    np.testing.assert_array_equal(read_volume(header).data, data.astype(np.float32))


def test_metaimage_data_in_a_subfolder_is_allowed(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "oct.raw").write_bytes(bytes(range(60)))
    header = _mhd(tmp_path, _grid(data="data/oct.raw"), raw=None)
    assert read_volume(header).shape == (2, 6, 5)


def test_lowered_bscan_limit_refuses_an_ordinary_png(tmp_path, monkeypatch):
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "b.png", np.zeros((40, 50), np.uint8))
    monkeypatch.setenv("OCTANOGAN_MAX_BSCAN_PIXELS", "1999")
    with pytest.raises(InputError, match=r"b\.png: declares a 50 x 40 image \(2,000 pixels\)"):
        read_volume(tmp_path / "b.png")
    monkeypatch.setenv("OCTANOGAN_MAX_BSCAN_PIXELS", "2000")
    assert read_volume(tmp_path / "b.png").shape == (1, 40, 50)


@pytest.mark.parametrize("value", ["lots", "-5", "0", "1.5e9"])
def test_bad_limit_setting_names_the_variable(tmp_path, monkeypatch, value):
    np.save(tmp_path / "ok.npy", GOOD)
    monkeypatch.setenv("OCTANOGAN_MAX_VOXELS", value)
    with pytest.raises(OctanoganError, match=f"OCTANOGAN_MAX_VOXELS={value!r}"):
        read_volume(tmp_path / "ok.npy")


def test_limits_defaults_and_overrides(monkeypatch):
    from octanogan.io.limits import BYTES_PER_VOXEL, VOXEL_CAP, available_memory, default_max_voxels

    assert ReadLimits() == ReadLimits(1024 * 2048 * 2048, 4096 * 4096)
    monkeypatch.delenv("OCTANOGAN_MAX_VOXELS", raising=False)
    machine = default_max_voxels()
    assert ReadLimits.from_env().max_voxels == machine <= VOXEL_CAP
    assert machine * BYTES_PER_VOXEL <= available_memory() or machine == 1
    assert ReadLimits.from_env({"OCTANOGAN_MAX_VOXELS": "1_000"}).max_voxels == 1000
    assert ReadLimits.from_env({}).max_bscan_pixels == 4096 * 4096


def test_the_reported_one_megabyte_mhd_is_refused_where_it_would_not_fit(tmp_path, monkeypatch):
    """Issue 17: a 1 MB .mhd (CompressedData, DimSize 1024 1024 1000) converted at 5.2 GB."""
    from octanogan.io.limits import default_max_voxels

    _set_env(monkeypatch, {})
    if 1024 * 1024 * 1000 <= default_max_voxels():
        pytest.skip("this machine has the memory for a 10^9-voxel volume")
    header = _mhd(tmp_path, _grid(dims="1024 1024 1000", extra="CompressedData = True\n"),
                  raw=zlib_bomb(1000))
    assert header.with_suffix(".raw").stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="1,048,576,000 voxels"):
            read_volume(header)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20
    assert check_size("x", (10, 10, 10), ReadLimits(max_voxels=1000)) == 1000
    with pytest.raises(InputError, match=r"^x\.npy: declares 1,001 voxels \(shape \(7, 11, 13\)\)"):
        check_size("x.npy", (7, 11, 13), ReadLimits(max_voxels=1000))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_refused_as_permission_denied(tmp_path):
    path = tmp_path / "locked.npy"
    np.save(path, GOOD)
    path.chmod(0)
    try:
        with pytest.raises(InputError, match="locked.npy: .*permission denied"):
            read_volume(path)
    finally:
        path.chmod(0o600)
