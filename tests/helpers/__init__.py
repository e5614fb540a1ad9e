"""What several test modules share: import it as ``tests.helpers`` (the repository root is on
``sys.path``, see ``pythonpath`` in pyproject.toml). Test modules never import each other."""
