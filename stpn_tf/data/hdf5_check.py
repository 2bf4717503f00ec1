"""A cheap integrity check of an HDF5 file before tensorflow-io opens it.

tensorflow-io's `IOTensor.from_hdf5` kills the process (SIGSEGV) on a truncated file instead of raising, so the
converter reads the superblock itself (HDF5 File Format Specification, section II.A "Disk Format: Level 0A -
Format Signature and Superblock") and compares the file's size with the end-of-file address it records. A file
shorter than that address was cut off (an interrupted copy or download) and is refused with an error naming it.
"""

from typing import BinaryIO, Callable

SIGNATURE = b"\x89HDF\r\n\x1a\n"
# The superblock (and so the signature) sits at offset 0 or, after a user block, at 512, 1024, 2048, ...
_MAX_SEARCH_OFFSET = 1 << 20


class Hdf5FileError(ValueError):
  """The file is not HDF5, or is truncated."""


def _signature_offset(f: BinaryIO) -> int:
  offset = 0
  while True:
    f.seek(offset)
    head = f.read(len(SIGNATURE))
    if head == SIGNATURE:
      return offset
    if len(head) < len(SIGNATURE) or offset >= _MAX_SEARCH_OFFSET:
      return -1
    offset = 512 if offset == 0 else 2 * offset


def _read_exact(f: BinaryIO, n: int, path: str) -> bytes:
  data = f.read(n)
  if len(data) != n:
    raise Hdf5FileError(f"{path} is a truncated HDF5 file (it ends inside its superblock)")
  return data


def end_of_file_address(f: BinaryIO, path: str) -> int:
  """The offset where the file must end at least: the superblock's end-of-file address.

  Raises:
    Hdf5FileError: no HDF5 signature, an unknown superblock version, or a file that ends inside the superblock.
  """
  start = _signature_offset(f)
  if start < 0:
    raise Hdf5FileError(f"{path} is not an HDF5 file (no HDF5 signature)")
  f.seek(start + len(SIGNATURE))
  version = _read_exact(f, 1, path)[0]
  if version in (0, 1):
    # After the version byte: free-space, root group and shared header versions with a reserved byte (4),
    # size of offsets, size of lengths, reserved, two 2-byte K values and 4 bytes of flags; version 1 adds a
    # 2-byte K and 2 reserved bytes. Then the base, free-space info and end-of-file addresses.
    size_of_offsets = _read_exact(f, 4 + 1 + 1 + 1 + 2 + 2 + 4 + (4 if version == 1 else 0), path)[4]
  elif version in (2, 3):
    # Size of offsets, size of lengths, flags; then the base, superblock extension and end-of-file addresses.
    size_of_offsets = _read_exact(f, 3, path)[0]
  else:
    raise Hdf5FileError(f"{path}: unknown HDF5 superblock version {version}")
  if size_of_offsets not in (2, 4, 8):
    raise Hdf5FileError(f"{path}: corrupt HDF5 superblock (size of offsets {size_of_offsets})")
  addresses = _read_exact(f, 3 * size_of_offsets, path)
  eof = int.from_bytes(addresses[2 * size_of_offsets:], "little")
  # The format specification calls addresses relative to the base address, but the library writes the end-of-file
  # address as the absolute file size (checked with h5py files that have a 512- and 1024-byte user block, base
  # address 512 / 1024): the absolute reading is the one that never refuses a complete file.
  return eof


def check_hdf5_file(path: str, open_binary: Callable[[str], BinaryIO]) -> None:
  """Raises Hdf5FileError unless `path` starts like HDF5 and is at least as long as its superblock says.

  Args:
    path: the file.
    open_binary: opens a path for binary reading (plain open locally, tf.io.gfile elsewhere).
  """
  with open_binary(path) as f:
    needed = end_of_file_address(f, path)
    f.seek(0, 2)
    size = f.tell()
  if size < needed:
    raise Hdf5FileError(f"{path} is a truncated HDF5 file: {size} bytes, but its superblock says the file ends at "
                        f"byte {needed} (an interrupted copy or download?)")
