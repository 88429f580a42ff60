"""The `gptlint` command: arguments, the run over files (workers, writes, printing), `--explain`
and the generated rules documentation. The top layer."""
