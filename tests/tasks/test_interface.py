"""The engine's task interface (tasks.interface.EngineTask): who satisfies it, who is refused."""

import pytest

from eval.run import engine
from rllc import catalog
from tasks import registry
from tasks.interface import EngineTask


def test_the_suites_image_task_satisfies_the_interface():
  assert isinstance(registry.get_task("digits-mlp"), EngineTask)


def test_the_engine_refuses_a_task_without_it_naming_what_it_lacks():
  class NoEvaluation:
    name = "toy"
    splits = None

    def init_with_state(self, key):
      return {}, None

    def loss_with_state(self, params, state, key, data):
      return 0.0, state

    def with_splits(self, splits):
      return self

  with pytest.raises(TypeError, match=r"NoEvaluation .* lacks evaluate \(tasks\.interface"):
    engine.train_grid(
      NoEvaluation(), catalog.lookup("sgd"), [({"learning_rate": 0.1}, 0)], engine.Schedule(2, 2, 1)
    )
