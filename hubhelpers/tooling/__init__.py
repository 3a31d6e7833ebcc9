"""The course machinery, not needed by learners: the notebook runner (`make course`), the benchmark (`make bench`),
the notebook conventions checker, the Colab badge/cell sync and the papermill entry point.

Installed with the ``course`` extra (``pip install -e ".[course]"``: papermill, nbval, JupyterLab); the lessons
never import it. Importing this package does no work; run the modules with ``python -m hubhelpers.tooling.NAME``.
"""
