"""Fair use: questions, tokens and bursts per role per bot, platform budgets, teacher overrides, limit hits."""
