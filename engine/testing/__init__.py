"""Tools for testing ListBackups implementations against SPEC.md.

:mod:`engine.testing.reference` is a deliberately naive model of the API in
plain Python (lists of dicts, ``sorted``, slicing; no polars, no pyarrow).
:mod:`engine.testing.strategies` generates records and queries with
hypothesis, which comes with the ``testing`` extra; without it, importing
that module raises :class:`MissingTestingExtra` naming the install command.

Example::

    from engine.testing.reference import answer
    answer(backups, vaults, members, "status=error&limit=2", project="p1")
"""

from __future__ import annotations

#: The command that installs what :mod:`engine.testing.strategies` needs.
INSTALL_TESTING: str = "pip install 'cbrq[testing]'"


class MissingTestingExtra(ModuleNotFoundError):
    """A module of :mod:`engine.testing` needs hypothesis, which is not installed.

    A ``ModuleNotFoundError`` (so ``pytest.importorskip`` and ``except ImportError`` work
    as for the bare one) whose message says what to install. It lives here, not in
    :mod:`engine.errors`, because ``engine.testing`` imports nothing of the engine but
    :mod:`engine.spec`; :class:`engine.errors.MissingExtra` is its counterpart for the CLI.

    Example::

        >>> error = MissingTestingExtra("engine.testing.strategies")
        >>> print(error)  # doctest: +NORMALIZE_WHITESPACE
        engine.testing.strategies needs hypothesis, which is not installed:
        pip install 'cbrq[testing]'
        >>> error.name
        'hypothesis'
    """

    def __init__(self, module: str, missing: str = "hypothesis") -> None:
        super().__init__(
            f"{module} needs {missing}, which is not installed: {INSTALL_TESTING}", name=missing
        )
