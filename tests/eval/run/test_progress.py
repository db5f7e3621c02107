"""eval.run.progress: job i of N, runs done, time left from the measured rate; the three modes."""

import io
import time

import pytest

from eval.run import progress


class Clock:
  def __init__(self):
    self.now = 100.0

  def __call__(self) -> float:
    return self.now


def test_time_left_is_the_remaining_run_steps_at_the_measured_rate():
  clock, out = Clock(), io.StringIO()
  meter = progress.Progress(2, 6, 600, mode="lines", stream=out, every=1e9, clock=clock)
  meter.start_job("digits-mlp sgd", 4, 400)
  clock.now += 10
  meter.update(200)  # 20 run-steps per second, 400 left: 20 s
  assert meter.left() == pytest.approx(20)
  assert meter.status() == (
    "job 1/2 digits-mlp sgd: 50% | runs 0/6 done | 10 s elapsed, ~20 s left"
  )
  meter.end_job(4)
  meter.start_job("digits-mlp adam", 2, 200)
  assert meter.status().startswith("job 2/2 digits-mlp adam: 0% | runs 4/6 done")
  meter.close()


def test_lines_mode_prints_at_least_every_interval_while_a_job_is_silent():
  out = io.StringIO()
  meter = progress.Progress(1, 1, 100, mode="lines", stream=out, every=0.05)
  meter.start_job("digits-mlp sgd", 1, 100)
  time.sleep(1.3)  # the ticker checks every min(every, 1 s): no update arrives meanwhile
  meter.end_job(1)
  meter.close()
  lines = out.getvalue().splitlines()
  assert len(lines) >= 3  # start, at least one tick, end
  assert all(line.startswith("job 1/1 digits-mlp sgd: ") for line in lines)


def test_quiet_mode_prints_nothing():
  out = io.StringIO()
  meter = progress.Progress(1, 1, 100, mode="quiet", stream=out, every=0)
  meter.start_job("digits-mlp sgd", 1, 100)
  meter.update(50)
  meter.tick()
  meter.end_job(1)
  meter.close()
  assert out.getvalue() == ""


def test_bar_mode_labels_the_bar_with_job_i_of_n_and_the_time_left():
  out = io.StringIO()
  meter = progress.Progress(3, 9, 900, mode="bar", stream=out)
  meter.start_job("mnist-mlp adam", 3, 300)
  meter.update(150)
  meter._bar.refresh()
  text = out.getvalue()
  assert "job 1/3 mnist-mlp adam" in text and "runs 0/9" in text and "left" in text
  meter.end_job(3)
  meter.close()


def test_mode_is_a_bar_on_a_terminal_and_lines_otherwise():
  class Tty(io.StringIO):
    def isatty(self):
      return True

  assert progress.auto_mode(Tty()) == "bar"
  assert progress.auto_mode(io.StringIO()) == "lines"


@pytest.mark.parametrize(
  "seconds,text", [(0.2, "under 1 s"), (45, "45 s"), (200, "3 min 20 s"), (7500, "2 h 05 min")]
)
def test_durations_read_as_people_say_them(seconds, text):
  assert progress.duration(seconds) == text
