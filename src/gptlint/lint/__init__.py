"""Linting one file: the context a rule sees, the rules, their diagnostics and fixes, and which
files are configs. Imports every layer below it, never `output` or `command`."""
