"""Find and compare language-specific sub-networks (lottery tickets) in multilingual language models.

The package holds all of the study's computation; the notebooks in ``notebooks/`` only call it.
"""

__version__ = "0.1.0"
