"""Launchers beyond one box: Slurm clusters through submitit (job arrays, requeue, dependencies).

`slurm` submits each (recipe, fold) as a task of one job array and a dependent job that writes
the runs' combined files; `jobs` holds the callables the tasks run; `settings` the cluster knobs;
`scheduler` follows submitted jobs through `squeue` (`--wait`), no accounting database needed.
"""
