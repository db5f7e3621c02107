"""Where a run was made: the machine fingerprint every record carries.

XLA compiles for the processor it finds (on a CPU, LLVM's host model and
instruction-set features), so the last bit of a float32 sum can differ
between two machines that run the same code on the same stack. A record's
key names the computation (eval.store.code); its fingerprint says where it
ran, and records of one key made on two machine classes can differ in their
bits (README, "Reproducibility": within a measured tolerance).

  fingerprint()        {"class", "arch", "cpu", "vendor", "cpu_family", "cpu_model",
                        "isa", "caches", "accelerator", "xla_flags"}
  class_of(record)     the machine class a record was made on ("unrecorded" before
                       fingerprints were kept)

The class is what XLA's code generation depends on: architecture, vendor,
CPU family and model number (LLVM picks its host model from them), the
instruction-set features that XLA can use, the cache sizes (the GEMM
kernels' blocking follows them), the accelerator's kind, and the XLA flags
but the host device count (the layout, which the key holds). Its
readable head names the widest vector extension ("x86_64 avx512"); the hash
after it tells classes apart that share a head.
"""

import functools
import hashlib
import json
import os
import platform
import re
from pathlib import Path
from typing import Any

# Instruction-set features that decide what XLA:CPU's LLVM back end emits.
_X86_PREFIXES = ("sse", "ssse3", "avx", "fma", "f16c", "amx", "bmi", "vpclmulqdq", "gfni", "vaes")
_ARM_FEATURES = ("asimd", "asimdhp", "asimddp", "fphp", "sve", "sve2", "bf16", "i8mm", "sme")
_DEVICE_COUNT_FLAG = re.compile(r"--xla_force_host_platform_device_count=\S+")
UNRECORDED = "unrecorded"


def _cpuinfo(text: str) -> dict[str, str]:
  """The first processor's fields of /proc/cpuinfo."""
  fields = {}
  for line in text.splitlines():
    if not line.strip():
      if fields:
        break
      continue
    name, _, value = line.partition(":")
    fields.setdefault(name.strip(), value.strip())
  return fields


def _isa(flags: list[str]) -> list[str]:
  """The codegen-relevant features among a CPU's flags, sorted."""
  keep = [f for f in flags if f.startswith(_X86_PREFIXES) or f in _ARM_FEATURES]
  return sorted(set(keep))


def _widest(isa: list[str], arch: str) -> str:
  for level in ("avx512f", "avx2", "avx", "sve2", "sve", "asimd"):
    if level in isa:
      return level.removesuffix("f") if level == "avx512f" else level
  return arch


def caches(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> list[str]:
  """The first core's caches, e.g. ["L1 Data 48K", "L2 Unified 2048K"] ([] where not known).

  The GEMM kernels XLA:CPU calls pick their blocking from the cache sizes, so
  two CPUs with the same features can still sum a matmul in another order.
  """
  found = []
  for index in sorted(root.glob("index*")) if root.is_dir() else []:
    try:
      level, kind, size = ((index / f).read_text().strip() for f in ("level", "type", "size"))
    except OSError:
      continue
    found.append(f"L{level} {kind} {size}")
  return found


def cpu(
  cpuinfo: str | None = None, arch: str | None = None, cache: list[str] | None = None
) -> dict[str, Any]:
  """The processor: model name, vendor, family and model numbers, features for XLA, caches.

  Args:
    cpuinfo: /proc/cpuinfo's text (read when None; empty where there is none).
    arch: the machine architecture (platform.machine() when None).
    cache: the caches (`caches()` when None).
  """
  arch = arch or platform.machine()
  if cpuinfo is None:
    path = Path("/proc/cpuinfo")
    cpuinfo = path.read_text(errors="replace") if path.is_file() else ""
  fields = _cpuinfo(cpuinfo)
  flags = (fields.get("flags") or fields.get("Features") or "").split()
  return {
    "arch": arch,
    "cpu": fields.get("model name") or fields.get("CPU part") or platform.processor() or arch,
    "vendor": fields.get("vendor_id") or fields.get("CPU implementer"),
    "cpu_family": fields.get("cpu family") or fields.get("CPU architecture"),
    "cpu_model": fields.get("model") or fields.get("CPU variant"),
    "isa": _isa(flags),
    "caches": caches() if cache is None else cache,
  }


def machine_class(print_: dict[str, Any]) -> str:
  """A fingerprint's class: a readable head and a hash of everything codegen depends on."""
  body = {k: v for k, v in print_.items() if k != "class"}
  digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
  head = print_["accelerator"] or _widest(print_["isa"], print_["arch"])
  return f"{print_['arch']} {head} #{digest}"


@functools.cache
def fingerprint() -> dict[str, Any]:
  """This machine's fingerprint (imports JAX to ask for its accelerator, if any)."""
  import jax

  device = jax.devices()[0]
  print_ = {
    **cpu(),
    "accelerator": None if device.platform == "cpu" else device.device_kind,
    "xla_flags": _DEVICE_COUNT_FLAG.sub("", os.environ.get("XLA_FLAGS", "")).strip() or None,
  }
  return {**print_, "class": machine_class(print_)}


def class_of(record: dict[str, Any]) -> str:
  """The machine class a record was made on, or UNRECORDED for a record older than fingerprints."""
  machine = (record.get("environment") or {}).get("machine")
  return machine["class"] if isinstance(machine, dict) and "class" in machine else UNRECORDED
