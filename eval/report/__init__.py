"""The report side: records -> selection -> statistics -> Markdown, LaTeX and HTML, and figures.

It reads the store and never trains; `build` is its entry point.
"""
