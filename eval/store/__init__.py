"""The store: one typed record per run, content-addressed, and the tidy per-run table.

It knows nothing of training or of reports: the run side writes records
through it and the report side reads them.
"""
