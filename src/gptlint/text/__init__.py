"""Text: a file's bytes read safely and decoded, parsed into trees (CPython's and libcst's),
positions of nodes, values written as nodes, and fixed bytes written back. Imports only `facts`.

One job a module:

* `files`: a file's bytes (regular files only, up to a limit); the folder a path's links lead to
* `decode`: bytes into text and back (`Source`), and `SourceError`
* `deep`: the thread with a deep stack that nested code is read in; no cyclic GC while parsing
* `nesting`: how deep an expression nests as libcst builds it
* `parse`: libcst's parser, run as fast as libcst allows
* `joins`: implicit string concatenations too long for libcst, read in pieces
* `syntax`: CPython's checks of a text (`check_syntax` gives a `CheckedText`)
* `reread`: a text read again from an earlier one's tree, after a pass of fixes (`Reparser`)
* `tree`: libcst's tree of a `CheckedText` (`parse_module`)
* `positions`, `literals`, `write`: where nodes are, values as nodes, fixed bytes written back
"""
