"""Task families on learned_optimization's Task API, with offline data.

`tasks.registry.get_task(name)` builds a task by name; `tasks.data` finds,
verifies and caches the data sets; `tasks.models` holds the flax networks and
`tasks.augment` the on-device augmentation of ResNet-20.
"""
