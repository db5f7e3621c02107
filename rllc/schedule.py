"""Learning rates that may be optax schedules, for the transformations written here."""

import optax


def value_at(learning_rate: optax.ScalarOrSchedule, count):
  """A constant learning rate, or an optax schedule evaluated at the step count."""
  return learning_rate(count) if callable(learning_rate) else learning_rate
