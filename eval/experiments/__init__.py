"""The papers' own experiments (adaptive-memory claims, the memory paper's order and
figure 1) and the speed scripts (engine and update ratios). Each is a `python -m` module
that writes a report under reports/."""
