"""The progress of a bench: job i of N, the runs done and the time left.

Three modes (`rllc bench` picks one):

  bar    on a terminal: one tqdm bar over the bench's run-steps, labelled
         "job i/N TASK OPTIMIZER", followed by the runs done and the time left;
  lines  when the output is not a terminal (a log file, a pipe): a line when a
         job starts and ends, and at least every `every` seconds (30) while one
         runs, so a long job in a log file is never silent for long;
  quiet  nothing (`--quiet`: the caller prints errors and the summary).

The time left is the run-steps still to train over the rate measured so far in
this bench (run-steps per second since its first job started, compilation
included): pessimistic at first, better with every evaluation. Jobs differ in
cost per run-step (a task's model, an optimizer's update), so it is an
estimate, and says so with a "~".
"""

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

MODES = ("bar", "lines", "quiet")
EVERY = 30.0  # seconds between two lines at most, in the lines mode


def auto_mode(stream: TextIO | None = None) -> str:
  """ "bar" when `stream` (stderr by default) is a terminal, else "lines"."""
  stream = sys.stderr if stream is None else stream
  isatty = getattr(stream, "isatty", None)
  return "bar" if isatty is not None and isatty() else "lines"


def duration(seconds: float) -> str:
  """E.g. "under 1 s", "45 s", "3 min 20 s", "2 h 05 min"."""
  if seconds < 0.5:
    return "under 1 s"
  seconds = round(seconds)
  if seconds < 60:
    return f"{seconds} s"
  minutes, secs = divmod(seconds, 60)
  if minutes < 60:
    return f"{minutes} min {secs:02d} s"
  hours, minutes = divmod(minutes, 60)
  return f"{hours} h {minutes:02d} min"


class Progress:
  """Counts a bench's jobs, runs and run-steps; prints in one of MODES.

  Args:
    jobs: how many jobs this bench trains (N).
    runs: how many runs those jobs train.
    run_steps: their run-steps (runs x steps, summed over the jobs).
    mode: one of MODES.
    stream: where to print (stderr by default).
    every: the lines mode prints at least this often (seconds) while a job runs.
    clock: seconds, monotonic (a test passes its own).
  """

  def __init__(
    self,
    jobs: int,
    runs: int,
    run_steps: int,
    *,
    mode: str = "lines",
    stream: TextIO | None = None,
    every: float = EVERY,
    clock: Callable[[], float] = time.monotonic,
  ):
    if mode not in MODES:
      raise ValueError(f"unknown progress mode {mode!r}; valid: {', '.join(MODES)}")
    self.jobs, self.runs, self.run_steps = jobs, runs, run_steps
    self.mode, self.every, self.clock = mode, every, clock
    self.stream = stream
    self.job_index = 0
    self.label = ""
    self.runs_done = 0
    self.steps_done = 0
    self.job_steps = self.job_steps_done = 0
    self.start: float | None = None
    self.last_line = 0.0
    self._lock = threading.Lock()
    self._stop = threading.Event()
    self._ticker: threading.Thread | None = None
    self._bar = None

  def _out(self) -> TextIO:
    return sys.stderr if self.stream is None else self.stream

  def left(self) -> float | None:
    """Seconds left at the rate measured so far; None before any run-step is done."""
    if self.start is None or self.steps_done == 0:
      return None
    elapsed = self.clock() - self.start
    if elapsed <= 0:
      return None
    return (self.run_steps - self.steps_done) / (self.steps_done / elapsed)

  def status(self) -> str:
    """E.g. "job 2/8 digits-mlp adam: 40% | runs 8/88 done | 35 s elapsed, ~4 min 10 s left"."""
    share = self.job_steps_done / self.job_steps if self.job_steps else 0.0
    elapsed = 0.0 if self.start is None else self.clock() - self.start
    return (
      f"job {self.job_index}/{self.jobs} {self.label}: {100 * share:.0f}%"
      f" | runs {self.runs_done}/{self.runs} done | {duration(elapsed)} elapsed, {self._left()}"
    )

  def _left(self) -> str:
    if self.steps_done >= self.run_steps:
      return "nothing left"
    left = self.left()
    return "time left not yet measured" if left is None else f"~{duration(left)} left"

  def _desc(self) -> str:
    """The bar's text, e.g. "job 2/8 digits-mlp adam | runs 8/88 | ~4 min 10 s left"."""
    return (
      f"job {self.job_index}/{self.jobs} {self.label} | runs {self.runs_done}/{self.runs}"
      f" | {self._left()}"
    )

  def _line(self, text: str) -> None:
    print(text, file=self._out(), flush=True)
    self.last_line = self.clock()

  def start_job(self, label: str, runs: int, run_steps: int) -> None:
    """A job of `runs` runs and `run_steps` run-steps begins."""
    with self._lock:
      if self.start is None:
        self.start = self.clock()
      self.job_index += 1
      self.label, self.job_runs = label, runs
      self.job_steps, self.job_steps_done = run_steps, 0
      if self.mode == "lines":
        self._line(self.status())
        self._start_ticker()
      elif self.mode == "bar":
        self._open_bar()

  def _open_bar(self) -> None:
    import shutil

    from tqdm import tqdm

    if self._bar is None:
      self._bar = tqdm(
        total=self.run_steps,
        unit="run-step",
        file=self._out(),
        leave=False,
        # A terminal that reports no size (0 x 0, e.g. a fresh pty) would get no bar at all.
        ncols=shutil.get_terminal_size((100, 24)).columns,
        nrows=shutil.get_terminal_size((100, 24)).lines,
        bar_format="{desc} |{bar}| {percentage:3.0f}%",
      )
    self._bar.set_description_str(self._desc())

  def update(self, run_steps: int) -> None:
    """`run_steps` more run-steps are done (the engine's progress callback)."""
    with self._lock:
      self.steps_done += run_steps
      self.job_steps_done += run_steps
      if self.mode == "bar" and self._bar is not None:
        self._bar.set_description_str(self._desc(), refresh=False)
        self._bar.update(run_steps)
      elif self.mode == "lines":
        self.tick()

  def tick(self) -> None:
    """In the lines mode: a line if none was printed for `every` seconds."""
    if self.mode == "lines" and self.label and self.clock() - self.last_line >= self.every:
      self._line(self.status())

  def end_job(self, runs: int) -> None:
    """The current job is over: `runs` runs done (its other run-steps, if any, count as done)."""
    self._stop_ticker()  # outside the lock: the ticker takes it
    with self._lock:
      rest = self.job_steps - self.job_steps_done
      self.steps_done += rest
      self.job_steps_done = self.job_steps
      self.runs_done += runs
      if self.mode == "lines":
        self._line(self.status())
      elif self.mode == "bar" and self._bar is not None:
        self._bar.set_description_str(self._desc(), refresh=False)
        self._bar.update(rest)
      self.label = ""

  def skip(self, runs: int, run_steps: int) -> None:
    """Work counted in the totals that another worker did (or that was already done)."""
    with self._lock:
      self.runs -= runs
      self.run_steps -= run_steps

  def close(self) -> None:
    self._stop_ticker()
    if self._bar is not None:
      self._bar.close()
      self._bar = None

  def _start_ticker(self) -> None:
    self._stop.clear()
    if self._ticker is None or not self._ticker.is_alive():
      self._ticker = threading.Thread(target=self._tick_loop, daemon=True)
      self._ticker.start()

  def _tick_loop(self) -> None:
    """Wakes when `every` seconds will have passed since the last line, and prints one then."""
    while True:
      with self._lock:
        due = self.last_line + self.every - self.clock()
      if self._stop.wait(min(max(due, 0.05), self.every)):
        return
      with self._lock:
        self.tick()

  def _stop_ticker(self) -> None:
    self._stop.set()
    if self._ticker is not None and self._ticker is not threading.current_thread():
      self._ticker.join()
    self._ticker = None
