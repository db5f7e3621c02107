"""Small synthetic learned_optimization tasks that need no data download."""
