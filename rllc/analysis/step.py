"""The effective step: how far a run's update moves per unit gradient, at each evaluation.

An optimizer's update on a constant gradient g tends to -lr(t) G g, with G
its gain (rllc.catalog.Entry.gain, declared once per entry); the effective
step is lr(t) G, the step size the run actually took, comparable across
optimizers of one kind (SGD-like steps in gradient units, Adam-like ones in
normalized units):

  SGD, Adam(W), NAdam(W), Lion, signum, Muon, EMA momentum   lr(t)
  heavy ball and Nesterov (optax, undampened), m <- beta m + g   lr(t) / (1 - beta)
  RLLC and fixed-law memory                    c1(t) W(L_t),  W(L) = a^T (I - B)^{-1} L
  AM-SGD, AM-MGD                               eta(t)
  AM-AdamW                                     eta(t) / (1 + mu eta(t))

W is the memory paper's effective learning rate per unit h (the sum of the
step weights w_i = a^T B^i L; rllc.analysis.linear, `rllc analyze`), read
with the law L_t of the update frozen. Adaptive memory (its paper's eq. 13):
d_{t+1} = ((beta_t + lam) d_t + (1 - beta_t) g_t) / (1 + lam) weighs d_t and
g_t by coefficients that sum to 1 whatever beta_t is, so with beta_t held
fixed and g constant, d tends to g and the step to eta(t): unlike heavy
ball's 1 / (1 - beta), beta_t moves the memory's horizon, not the step size.
AM-AdamW's x_{t+1} = (x_t - eta P^{-1} d_{t+1}) / (1 + mu eta) (section 3.3)
divides the preconditioned step by 1 + mu eta. AdEMAMix: (1 + alpha) lr(t);
delta-rule momentum: lr / (1 - alpha (1 - delta)).

The step recorded after t completed updates is the last update's, whose
count is t - 1 (rllc.schedule's t).

References: the memory paper (memory_implicitly_modifies_the_loss, formula
(9)); the adaptive-memory paper (adaptive_memory_momentum, eqs. 5, 13).
"""

from collections.abc import Mapping
from typing import Any

import numpy as np

from rllc import catalog
from rllc import schedule as schedule_lib
from rllc.analysis import linear


def effective_steps(
  entry: catalog.Entry, resolved: Mapping[str, Any], steps, laws=None
) -> np.ndarray:
  """lr(t) G at each number of completed steps, float64.

  Args:
    entry: the optimizer's catalog entry (a spec's, for a memory).
    resolved: its resolved hyperparameters (concrete).
    steps: completed steps at each evaluation (>= 1).
    laws: [len(steps), k] the law of each evaluation's last update, for a
      memory (entry.gain == catalog.LAW_GAIN); else unused.
  """
  steps = np.asarray(steps, np.int64)
  lr = np.asarray(schedule_lib.learning_rate_np(resolved, steps - 1), np.float64)
  if entry.gain == catalog.LAW_GAIN:
    return lr * linear.law_trajectory(entry.propagator, laws)[:, 0]
  return lr * np.array([entry.gain(resolved, float(x)) for x in lr], np.float64)
