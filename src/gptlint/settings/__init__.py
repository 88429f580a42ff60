"""Settings: the one table of what changes what gptlint reports, and `[tool.gptlint]` in
pyproject.toml. Imports only `facts`."""
