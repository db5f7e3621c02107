"""The `rllc` command line: parsing and messages over eval.run, eval.store and eval.report."""

from eval.cli.commands import main

__all__ = ["main"]
