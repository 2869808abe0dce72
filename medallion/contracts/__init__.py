"""The contracts every other part of medallion is written against, at the bottom of the
import graph: it imports nothing else of the project.

- `scenario_base`, `sampler_specs`, `scenario`: the scenario models (configs/scenarios/*.yaml),
  their limits and shared helpers; `scenario_loader`: YAML file or mapping -> validated models.
- `layout`, `paths`: the data root's folders and file names, and the sandbox checks on them.
- `manifest`: batch manifests and their defect ledger.
- `errors`: the exception classes and their exit codes.
- `options`: the command-line options `medallion` and the spark-submit jobs share; the export target kinds.
- `version`: the version written into manifests.
"""
