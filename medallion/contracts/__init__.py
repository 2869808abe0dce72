"""The contracts every other part of medallion is written against, at the bottom of the
import graph: it imports nothing else of the project.

- `scenario`: the scenario models and their loader (configs/scenarios/*.yaml).
- `layout`, `paths`: the data root's folders and file names, and the sandbox checks on them.
- `manifest`: batch manifests and their defect ledger.
- `errors`: the exception classes and their exit codes.
- `options`: the command-line options `medallion` and the spark-submit jobs share; the export target kinds.
- `version`: the version written into manifests.
"""
