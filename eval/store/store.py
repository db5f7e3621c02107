"""The results store: one JSON record per run, named by a content hash, written atomically.

  DIR/records/<key>.json   one run: (task, optimizer, hyperparameters, seed, protocol)
  DIR/results.jsonl        every valid record, one per line (rebuilt after each bench)
  DIR/summary.txt          the selected results, a line per (task, optimizer); rebuilt by each bench
  DIR/log.jsonl            one line per trained job: what it trained and how long it took
  DIR/plan.json            every run a bench meant to have: identity digest -> key, identity
  DIR/corrupt/             records that failed their check, moved aside to be redone
  DIR/locks/               one lock file per job, held (flock) while a worker trains it

  pandas:  pd.read_json("DIR/results.jsonl", lines=True)

Why JSON: a record is small and nested (curves, the law over time), is read
by people as often as by programs, and must be checkable on its own. One
file per record makes each write an atomic rename (temporary file, fsync,
`os.replace`) and lets any number of workers write into one store without
coordination: two writers of one key write the same bytes. Parquet would
need one file per batch and a reader to inspect.

The key is the SHA-256 of the canonical JSON of the computation: task,
optimizer, resolved hyperparameters, seed, the protocol's training fields,
the layout (eval.run.bench.record_key), the hash of the code the run executes
(eval.store.code: the runner, the optimizer's modules, the task's) and the
versions of the JAX stack. Where it ran is not in the key but in the
record's machine fingerprint (eval.store.machine): one key's bits are the
same on one machine class, and agree within a measured tolerance across
classes (README, "Reproducibility"). Each record carries a
`checksum` of its own content; a record that does not parse, does not match
its checksum or its file name is reported, moved to `corrupt/` and redone.

Locks: a worker takes a job's lock with a non-blocking `flock` before
training it; the kernel releases it when the process dies, kill -9
included, so a killed worker never leaves a job claimed.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import subprocess
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from eval.store import records as records_lib

_PROJECT = Path(__file__).resolve().parents[2]
STACK = ("jax", "jaxlib", "optax", "flax", "numpy", "learned-optimization")


def canonical_json(value: Any) -> str:
  """Sorted keys, no spaces: the same value always gives the same text."""
  return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(value: Any) -> str:
  return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def _version(package: str) -> str | None:
  try:
    return metadata.version(package)
  except metadata.PackageNotFoundError:
    return None


def environment() -> dict[str, Any]:
  """Where records are made: stack versions, Python, backend, devices and git commit.

  A job's records add its code hashes (eval.store.code.job_code), its layout
  and the fingerprint of the machine that trained it (eval.store.machine).
  """
  try:
    commit = subprocess.run(
      ["git", "rev-parse", "HEAD"], cwd=_PROJECT, capture_output=True, text=True, check=True
    ).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    commit = None
  import jax  # the backend is known only once jax is imported

  return {
    "versions": {p: _version(p) for p in STACK},
    "python": platform.python_version(),
    "backend": jax.default_backend(),
    "devices": jax.local_device_count(),  # the runs are sharded over them: part of the bits
    "git_commit": commit,
  }


def record_key(identity: dict[str, Any], env: dict[str, Any]) -> str:
  """The content hash of a run: its identity plus its job's code hash and the stack versions."""
  return digest({**identity, "code": env["code"], "versions": env["versions"]})


class CorruptRecordError(Exception):
  """A record file that is not a valid record of its key."""


def _check(path: Path, key: str) -> dict:
  try:
    record = json.loads(path.read_text())
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
    raise CorruptRecordError(f"{path}: unreadable ({err})") from None
  if not isinstance(record, dict) or "checksum" not in record:
    raise CorruptRecordError(f"{path}: not a record (no checksum)")
  body = {k: v for k, v in record.items() if k != "checksum"}
  if digest(body) != record["checksum"]:
    raise CorruptRecordError(f"{path}: checksum mismatch (edited or partly written)")
  if record.get("key") != key:
    raise CorruptRecordError(f"{path}: holds key {record.get('key')!r}, not its file name's")
  try:
    return records_lib.check(record)
  except ValueError as err:
    raise CorruptRecordError(f"{path}: {err}") from None


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
  """Writes to a temporary file beside `path`, fsyncs, renames: readers see all or nothing."""
  path = Path(path)
  tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
  try:
    with naming(path), open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  finally:
    tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def naming(path: str | os.PathLike) -> Iterator[None]:
  """An OSError without a file name (a write refused: disk full, file too large) gets `path`."""
  try:
    yield
  except OSError as err:
    if err.filename is None and err.errno is not None:
      raise OSError(err.errno, err.strerror, str(path)) from err
    raise


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


class Store:
  """A directory of records; safe for concurrent workers."""

  def __init__(self, root: str | os.PathLike):
    self.root = Path(root)
    self.records_dir = self.root / "records"
    self.warnings: list[str] = []  # corrupt records found, in the order found

  def create(self) -> None:
    for sub in ("records", "locks"):
      (self.root / sub).mkdir(parents=True, exist_ok=True)
    self._remove_orphans()

  def _remove_orphans(self) -> None:
    """Temporary files of writers that died (kill -9) before their rename."""
    for tmp in self.records_dir.glob(".*.tmp"):
      pid = tmp.name.rsplit(".", 2)[-2]
      if pid.isdigit() and not _pid_alive(int(pid)):
        tmp.unlink(missing_ok=True)

  def path(self, key: str) -> Path:
    return self.records_dir / f"{key}.json"

  def get(self, key: str) -> records_lib.RunRecord | None:
    """The valid record of `key`, or None (missing; corrupt ones are moved aside and noted)."""
    path = self.path(key)
    if not path.exists():
      return None
    try:
      return _check(path, key)
    except CorruptRecordError as err:
      self._quarantine(path, str(err))
      return None

  def _quarantine(self, path: Path, why: str) -> None:
    """Moves a corrupt record aside; puts it back if a worker had just rewritten it validly."""
    corrupt = self.root / "corrupt"
    corrupt.mkdir(exist_ok=True)
    moved = corrupt / f"{path.stem}.{os.getpid()}.{time.time_ns()}.json"
    try:
      os.replace(path, moved)
    except FileNotFoundError:  # another worker moved it first
      return
    try:
      _check(moved, path.stem)
    except CorruptRecordError:
      self.warnings.append(f"corrupt record, moved to {corrupt} and redone: {why}")
      return
    os.replace(moved, path)  # valid: a writer replaced it between our read and our move

  def put(self, record: records_lib.RunRecord) -> None:
    """Writes a record (with `key`), adding its checksum."""
    body = {k: v for k, v in record.items() if k != "checksum"}
    text = canonical_json({**body, "checksum": digest(body)})
    atomic_write(self.path(record["key"]), text + "\n")

  def _has_records_dir(self) -> bool:
    """Whether records/ is there; StoreError if something else is there under its name."""
    if self.records_dir.exists() and not self.records_dir.is_dir():
      raise StoreError(_not_a_directory(self.records_dir), exit_code=1)
    return self.records_dir.is_dir()

  def records(self) -> list[records_lib.RunRecord]:
    """Every valid record, sorted by key (corrupt ones moved aside and noted)."""
    if not self._has_records_dir():
      return []
    found = []
    for path in sorted(self.records_dir.glob("*.json")):
      record = self.get(path.stem)
      if record is not None:
        found.append(record)
    return found

  def inspect(self) -> tuple[list[dict], list[str]]:
    """Every valid record, sorted by key, and what is wrong with the others; moves nothing."""
    found, problems = [], []
    for path in sorted(self.records_dir.glob("*.json")) if self._has_records_dir() else []:
      try:
        found.append(_check(path, path.stem))
      except CorruptRecordError as err:
        problems.append(str(err))
    return found, problems

  def write_table(self) -> Path:
    """Rebuilds results.jsonl from the records, under a lock so the last writer sees all."""
    target = self.root / "results.jsonl"
    with open(self.root / "locks" / "results.lock", "w") as lock:
      fcntl.flock(lock, fcntl.LOCK_EX)
      lines = [canonical_json(r) + "\n" for r in self.records()]
      atomic_write(target, "".join(lines))
    return target

  def write_plan(self, runs: list[tuple[dict, str]], select: str) -> None:
    """Merges (identity, key) of a bench's runs into plan.json; the newest key of an identity wins.

    The report compares it with the records: a planned key without a record is a
    missing run, and a record whose identity is planned under another key (made
    by other code or versions) is superseded. `select` is the protocol's
    selection rule, which the report uses unless told another.
    """
    with open(self.root / "locks" / "plan.lock", "w") as lock:
      fcntl.flock(lock, fcntl.LOCK_EX)
      plan = self.read_plan()
      plan.update(
        {
          digest(identity): {"identity": identity, "key": key, "select": select}
          for identity, key in runs
        }
      )
      atomic_write(self.root / "plan.json", canonical_json(plan) + "\n")

  def read_plan(self) -> dict[str, dict]:
    """plan.json, or {} for a store written before plans were kept."""
    path = self.root / "plan.json"
    return json.loads(path.read_text()) if path.exists() else {}

  def write_text(self, name: str, text: str) -> Path:
    """Writes a derived file (a summary) at the store's top, atomically."""
    target = self.root / name
    atomic_write(target, text)
    return target

  def log(self, event: dict) -> None:
    """Appends one line to log.jsonl (a single write: lines of concurrent workers never mix)."""
    line = (canonical_json({"time": time.time(), "pid": os.getpid(), **event}) + "\n").encode()
    fd = os.open(self.root / "log.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
      with naming(self.root / "log.jsonl"):
        os.write(fd, line)
    finally:
      os.close(fd)

  def read_log(self) -> list[dict]:
    path = self.root / "log.jsonl"
    if not path.exists():
      return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

  @contextlib.contextmanager
  def claim(self, job_id: str, *, wait: bool) -> Iterator[bool]:
    """Holds the job's lock while inside; yields False if another worker holds it (wait=False)."""
    with open(self.root / "locks" / f"{job_id}.lock", "w") as lock:
      try:
        fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
      except BlockingIOError:
        yield False
        return
      try:
        yield True
      finally:
        fcntl.flock(lock, fcntl.LOCK_UN)


class StoreError(Exception):
  """A store that cannot be used as asked: names the path and what would be valid.

  `exit_code` is the command line's status: 2 for a bad choice of path, 1 for a
  store whose own files are damaged.
  """

  def __init__(self, message: str, exit_code: int = 2):
    super().__init__(message)
    self.exit_code = exit_code


def writable_problem(path: str | os.PathLike) -> str | None:
  """Why a directory could not be made or written at `path`, or None if it can.

  Probes by creating and removing a file, in `path` if it is a directory, else
  in its nearest existing ancestor: permission bits alone do not say it (root
  ignores them; read-only mounts and immutable files refuse even root).
  """
  path = Path(path)
  if path.exists() and not path.is_dir():
    return f"{path} is a file, not a directory"
  existing = path
  while not existing.exists() and existing != existing.parent:
    existing = existing.parent
  if not existing.is_dir():
    return f"{existing} is a file, so {path} cannot be made"
  probe = existing / f".rllc-write-probe.{os.getpid()}"
  try:
    probe.touch()
    probe.unlink()
  except OSError as err:
    return f"{existing} is not writable ({err.strerror})"
  return None


def check_usable(root: str | os.PathLike) -> None:
  """Raises StoreError, before anything is written, if a bench cannot write the store at `root`.

  Checks that `root` is (or can become) a directory, that it and its records/
  and locks/ can be written, that its lock and log files open for writing,
  and that plan.json, if there, is readable.
  """
  root = Path(root)
  if root.exists() and not root.is_dir():
    raise StoreError(
      f"--out {root} is a file, not a store directory; give a directory (a new one, or a store"
      " that rllc bench wrote)"
    )
  for where in (root / "records", root / "locks"):
    if where.exists() and not where.is_dir():
      raise StoreError(_not_a_directory(where), exit_code=1)
  for where in (root, root / "records", root / "locks"):
    if where == root or where.is_dir():
      problem = writable_problem(where)
      if problem:
        raise StoreError(
          f"cannot write the store {root}: {problem}; give --out a directory you can write (e.g."
          f" --out runs/mine), or make {root} writable"
        )
  for name in ("locks/plan.lock", "locks/results.lock", "log.jsonl"):
    path = root / name
    if path.exists():
      try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
      except OSError as err:
        raise StoreError(
          f"cannot write the store {root}: {path} is not writable ({err.strerror}); give --out"
          f" a directory you can write, or make {root} writable"
        ) from None
  read_plan_checked(root)


def read_plan_checked(root: str | os.PathLike) -> dict[str, dict]:
  """plan.json of a store ({} if absent); StoreError (exit 1) if it is not a valid plan."""
  path = Path(root) / "plan.json"
  try:
    plan = Store(root).read_plan()
  except (OSError, UnicodeDecodeError, ValueError) as err:
    raise StoreError(
      f"{path} is corrupt ({err}); delete it (the records stay, and the next rllc bench writes"
      " the plan again) or give --out another directory",
      exit_code=1,
    ) from None
  if not isinstance(plan, dict) or not all(
    isinstance(e, dict) and {"identity", "key"} <= set(e) for e in plan.values()
  ):
    raise StoreError(
      f"{path} is not a plan of runs (an object of {{identity, key}} entries); delete it (the"
      " records stay, and the next rllc bench writes the plan again)",
      exit_code=1,
    )
  return plan


def _not_a_directory(path: Path) -> str:
  return (
    f"{path} is not a directory, so {path.parent} is not a store as rllc bench writes one;"
    " move it aside, or give another store"
  )


def valid_records(root: str | os.PathLike) -> list[dict]:
  """Every record of a store; StoreError (exit 1) if there is none or one is corrupt."""
  root = Path(root)
  if not root.is_dir():
    raise StoreError(f"no store at {root} (rllc bench --out {root} writes one)", exit_code=1)
  records, problems = Store(root).inspect()
  if problems:
    raise StoreError(
      f"{len(problems)} corrupt record(s) in {root}; rerun the rllc bench command that made the"
      " store (it moves corrupt records aside and trains them again), or delete them:\n  "
      + "\n  ".join(problems),
      exit_code=1,
    )
  if not records:
    raise StoreError(f"no records in {root} (rllc bench --out {root} writes them)", exit_code=1)
  return records
