"""Evaluation: from a protocol to committed results, in sub-packages that follow the data flow.

  eval.store        typed run records in a content-addressed directory, and their tidy table
  eval.run          protocols, planning, the engine and the executors: writes records
  eval.report       selection, statistics, comparison, renderers and figures: reads records
  eval.experiments  the papers' own experiments and the speed scripts
  eval.cli          the `rllc` command line, a thin layer over the others

A package imports only the ones above it in this list (and `rllc`, `tasks`);
tests/test_layers.py checks it by parsing the imports.
"""
