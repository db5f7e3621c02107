"""The report side: the tidy frame -> selection -> statistics -> sections -> md, tex and html.

It reads the store once and never trains; `build` is its entry point and
returns sections (document, sections, review_sections) that `write` renders
(render) and whose figure specs (figures, plots) it draws (draw).
"""
