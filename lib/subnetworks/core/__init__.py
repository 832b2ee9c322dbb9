"""core: masks and their file format, magnitude pruning, random draws, overlap on packed bits, transfer arithmetic
and statistics. Pure functions over torch and numpy: no models, no datasets, no files beyond mask IO.
"""
