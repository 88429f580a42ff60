"""Text: a file's bytes read safely and decoded, parsed into trees (CPython's and libcst's),
positions of nodes, values written as nodes, and fixed bytes written back. Imports only `facts`."""
