"""The run side: a protocol becomes a plan of jobs, and the engine trains each job's grid.

protocol (quick | paper | TOML) -> bench.plan (grid x seeds -> jobs) ->
engine.train_grid (one compiled program per job) -> records in eval.store.
"""
