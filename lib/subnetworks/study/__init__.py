"""study: a study's runs (torch-free layout of keys and directories, the one grid), its registered sources and
controls, the workspace that computes it, and the stages."""
