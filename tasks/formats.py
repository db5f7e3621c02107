"""Parsers of the original MNIST, Fashion-MNIST and CIFAR-10 files, with their checks.

Every parser reads with `numpy.frombuffer`, checks what its format promises
(IDX magic numbers 2051/2049, the dimensions in the header against the file's
size, the expected counts, CIFAR-10 record sizes, labels in 0..9) and raises
`FormatError` naming the file and what is wrong with it. The result is a
`Raw`: the original train and test splits as uint8 NHWC images and uint8
labels, as the cache stores them. `tasks.data` decides where files come from.
"""

import gzip
import io
import pickle
import posixpath
import tarfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

IDX_IMAGES_MAGIC = 2051  # 0x0803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x0801: unsigned bytes, 1 dimension
MNIST_COUNTS = (60_000, 10_000)  # train, test; Fashion-MNIST has the same
# Field of Raw -> the IDX file's name without ".gz".
IDX_FILES = {
  "train_images": "train-images-idx3-ubyte",
  "train_labels": "train-labels-idx1-ubyte",
  "test_images": "t10k-images-idx3-ubyte",
  "test_labels": "t10k-labels-idx1-ubyte",
}

CIFAR_TARBALLS = ("cifar-10-python.tar.gz", "cifar-10-binary.tar.gz")
CIFAR_FOLDERS = ("cifar-10-batches-py", "cifar-10-batches-bin")
CIFAR_PYTHON_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
CIFAR_BINARY_BATCHES = tuple(f"{batch}.bin" for batch in CIFAR_PYTHON_BATCHES)
CIFAR_RECORDS_PER_BATCH = 10_000
CIFAR_PIXELS = 3 * 32 * 32
NUM_CLASSES = 10

# What a corrupt gzip stream or tar archive raises while it is read.
_READ_ERRORS = (OSError, EOFError, zlib.error, tarfile.TarError)


class FormatError(ValueError):
  """A data file that is missing, truncated or not in its format."""


class Raw(NamedTuple):
  """The original splits: images uint8 (N, H, W, C), labels uint8 (N,)."""

  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray


def check_raw(raw: Raw, image_shape: tuple[int, ...], counts: tuple[int, int], where: str) -> Raw:
  """Checks dtypes, shapes, counts and the label range of `raw`; returns it.

  Raises:
    FormatError: naming `where` and the first thing that is wrong.
  """
  for split, count in zip(("train", "test"), counts, strict=True):
    images, labels = getattr(raw, f"{split}_images"), getattr(raw, f"{split}_labels")
    for kind, array, shape in (
      ("images", images, (count, *image_shape)),
      ("labels", labels, (count,)),
    ):
      if array.dtype != np.uint8 or array.shape != shape:
        raise FormatError(
          f"{where}: {split} {kind} are {array.dtype} {array.shape}, expected uint8 {shape}"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
      raise FormatError(f"{where}: {split} label {labels.max()} is outside 0..{NUM_CLASSES - 1}")
  return raw


def _read_file(path: Path) -> bytes:
  """The bytes of `path`, decompressed when its name ends with .gz."""
  try:
    if path.suffix == ".gz":
      with gzip.open(path, "rb") as stream:
        return stream.read()
    return path.read_bytes()
  except _READ_ERRORS as err:
    raise FormatError(f"{path}: cannot be read ({err})") from err


def read_idx(path: Path, magic: int, shape: tuple[int, ...]) -> np.ndarray:
  """Parses an IDX file of unsigned bytes (gzip-compressed if named .gz).

  Args:
    path: the file.
    magic: IDX_IMAGES_MAGIC or IDX_LABELS_MAGIC.
    shape: the dimensions its header must state, e.g. (60000, 28, 28).

  Returns:
    A read-only uint8 array of `shape`.

  Raises:
    FormatError: a wrong magic number or header, or a size that disagrees with the header.
  """
  raw = _read_file(path)
  header_size = 4 + 4 * len(shape)
  if len(raw) < header_size:
    raise FormatError(f"{path}: {len(raw)} bytes, shorter than an IDX header ({header_size})")
  found_magic = int.from_bytes(raw[:4], "big")
  if found_magic != magic:
    raise FormatError(
      f"{path}: magic number {found_magic} where an IDX "
      f"{'images' if magic == IDX_IMAGES_MAGIC else 'labels'} file has {magic}"
    )
  dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=len(shape), offset=4))
  if dims != shape:
    raise FormatError(f"{path}: the header states dimensions {dims}, expected {shape}")
  expected = header_size + int(np.prod(shape))
  if len(raw) != expected:
    raise FormatError(
      f"{path}: {len(raw)} bytes where its header promises {expected}"
      + (" (truncated)" if len(raw) < expected else "")
    )
  return np.frombuffer(raw, np.uint8, offset=header_size).reshape(shape)


def idx_paths(directory: Path) -> dict[str, Path]:
  """The IDX files present in `directory` (.gz or uncompressed), by field of Raw."""
  found = {}
  for field, stem in IDX_FILES.items():
    for name in (f"{stem}.gz", stem):
      if (directory / name).is_file():
        found[field] = directory / name
        break
  return found


def read_mnist(directory: Path) -> Raw:
  """Parses and checks the four IDX files of MNIST or Fashion-MNIST in `directory`.

  Raises:
    FormatError: a file is missing or fails a check of `read_idx` or `check_raw`.
  """
  paths = idx_paths(directory)
  missing = [stem for field, stem in IDX_FILES.items() if field not in paths]
  if missing:
    raise FormatError(f"{directory}: missing {', '.join(missing)} (.gz or uncompressed)")
  arrays = {}
  for split, count in zip(("train", "test"), MNIST_COUNTS, strict=True):
    images = read_idx(paths[f"{split}_images"], IDX_IMAGES_MAGIC, (count, 28, 28))
    arrays[f"{split}_images"] = images[..., None]
    arrays[f"{split}_labels"] = read_idx(paths[f"{split}_labels"], IDX_LABELS_MAGIC, (count,))
  return check_raw(Raw(**arrays), (28, 28, 1), MNIST_COUNTS, str(directory))


def _to_nhwc(rows: np.ndarray) -> np.ndarray:
  """(N, 3072) rows, each channel-first 3x32x32, to (N, 32, 32, 3)."""
  return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


class _CifarUnpickler(pickle.Unpickler):
  """Unpickles CIFAR-10's batch dicts and refuses any other object: no code runs."""

  _ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),  # as the original files (numpy 1) name it
    ("numpy._core.multiarray", "_reconstruct"),  # as numpy 2 writes it
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes pickled by Python 3 with protocol 2
  }

  def find_class(self, module: str, name: str):
    if (module, name) not in self._ALLOWED:
      raise pickle.UnpicklingError(f"refusing {module}.{name}")
    return super().find_class(module, name)


def parse_cifar_python_batch(
  content: bytes, where: str, records: int = CIFAR_RECORDS_PER_BATCH
) -> tuple[np.ndarray, np.ndarray]:
  """One batch of cifar-10-python.tar.gz: a pickled dict with b"data" and b"labels".

  Args:
    content: the batch file's bytes.
    where: the file's name, for messages.
    records: how many images the batch must hold.

  Returns:
    (images uint8 (records, 32, 32, 3), labels uint8 (records,)).

  Raises:
    FormatError: not such a pickle, or the wrong number or size of records, or a label
      outside 0..9.
  """
  try:
    batch = _CifarUnpickler(io.BytesIO(content), encoding="bytes").load()
  # A damaged pickle can fail in many ways (EOFError, UnpicklingError, KeyError, ...).
  except Exception as err:
    raise FormatError(
      f"{where}: not a readable CIFAR-10 pickle ({type(err).__name__}: {err})"
    ) from err
  if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
    raise FormatError(f'{where}: not a CIFAR-10 batch (a dict with b"data" and b"labels")')
  data, labels = batch[b"data"], np.asarray(batch[b"labels"])
  if (
    not isinstance(data, np.ndarray)
    or data.dtype != np.uint8
    or data.shape != (records, CIFAR_PIXELS)
  ):
    shape = getattr(data, "shape", type(data).__name__)
    raise FormatError(f"{where}: data is {shape}, expected uint8 ({records}, {CIFAR_PIXELS})")
  if labels.shape != (records,) or labels.dtype.kind not in "iu":
    raise FormatError(f"{where}: labels are {labels.dtype} {labels.shape}, expected {records} ints")
  if labels.min() < 0 or labels.max() >= NUM_CLASSES:
    raise FormatError(f"{where}: labels outside 0..{NUM_CLASSES - 1}")
  return _to_nhwc(data), labels.astype(np.uint8)


def parse_cifar_binary_batch(
  content: bytes, where: str, records: int = CIFAR_RECORDS_PER_BATCH
) -> tuple[np.ndarray, np.ndarray]:
  """One batch of cifar-10-binary.tar.gz: records of 1 label byte + 3072 pixel bytes.

  Args and returns as `parse_cifar_python_batch`.

  Raises:
    FormatError: the size is not `records` whole records, or a label is outside 0..9.
  """
  record_size = 1 + CIFAR_PIXELS
  if len(content) != records * record_size:
    raise FormatError(
      f"{where}: {len(content)} bytes, expected {records} records of {record_size} bytes "
      f"({records * record_size})"
      + (" (truncated)" if len(content) < records * record_size else "")
    )
  table = np.frombuffer(content, np.uint8).reshape(records, record_size)
  labels = table[:, 0].copy()
  if labels.max() >= NUM_CLASSES:
    raise FormatError(f"{where}: label {labels.max()} outside 0..{NUM_CLASSES - 1}")
  return _to_nhwc(table[:, 1:]), labels


def cifar_sources(directory: Path) -> list[Path]:
  """CIFAR-10 tarballs and extracted batch folders in `directory`, python format first.

  `directory` itself counts as an extracted folder when it holds data_batch_1 or
  data_batch_1.bin.
  """
  candidates = [directory / name for name in (*CIFAR_TARBALLS, *CIFAR_FOLDERS)]
  found = [path for path in candidates if path.exists()]
  if any((directory / name).is_file() for name in ("data_batch_1", "data_batch_1.bin")):
    found.append(directory)
  return found


def _batch_files(source: Path) -> dict[str, tuple[bytes, str]]:
  """The batch files of either format in a tarball or folder: base name -> (bytes, where)."""
  wanted = {*CIFAR_PYTHON_BATCHES, *CIFAR_BINARY_BATCHES}
  if source.is_dir():
    return {
      name: ((source / name).read_bytes(), str(source / name))
      for name in wanted
      if (source / name).is_file()
    }
  found = {}
  try:
    with tarfile.open(source, "r:*") as tar:
      for member in tar:
        name = posixpath.basename(member.name)
        if member.isfile() and name in wanted:
          found[name] = (tar.extractfile(member).read(), f"{source}:{member.name}")
  except _READ_ERRORS as err:
    raise FormatError(f"{source}: not a readable tar archive ({err})") from err
  return found


def read_cifar10(source: Path, records_per_batch: int = CIFAR_RECORDS_PER_BATCH) -> Raw:
  """Parses and checks CIFAR-10 from a tarball or an extracted folder, either format.

  Args:
    source: cifar-10-python.tar.gz, cifar-10-binary.tar.gz, or a folder holding the
      batches (data_batch_1..5 and test_batch, or the same named .bin).
    records_per_batch: images per batch file: 10,000 in the real data set (tests use
      fewer).

  Returns:
    Train (the five data batches in order) and test (test_batch).

  Raises:
    FormatError: a batch file is missing or fails its parser's checks.
  """
  files = _batch_files(source)
  for names, parse in (
    (CIFAR_PYTHON_BATCHES, parse_cifar_python_batch),
    (CIFAR_BINARY_BATCHES, parse_cifar_binary_batch),
  ):
    if names[0] in files:
      missing = [name for name in names if name not in files]
      if missing:
        raise FormatError(f"{source}: missing the batch files {', '.join(missing)}")
      batches = [parse(*files[name], records=records_per_batch) for name in names]
      break
  else:
    raise FormatError(
      f"{source}: no CIFAR-10 batches (data_batch_1..5 and test_batch, or the same .bin)"
    )
  train_images, train_labels = (np.concatenate(parts) for parts in zip(*batches[:-1], strict=True))
  return check_raw(
    Raw(train_images, train_labels, *batches[-1]),
    (32, 32, 3),
    (5 * records_per_batch, records_per_batch),
    str(source),
  )
