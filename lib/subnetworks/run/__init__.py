"""run: executing a study — the shared kernel and papermill, the local scheduler, the Slurm executor (submitit),
the report's HTML, ``status``, ``cost`` and the command line."""
