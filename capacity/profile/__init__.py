"""Profiles: YAML in, a validated and frozen :class:`Profile` out.

``schema`` declares the shape (pydantic), ``loader`` reads, merges and reports errors as
``file:line: key.path: rule``, ``presets`` holds the providers' documented defaults. Every
later layer trusts a loaded profile; nothing here imports numba, scipy, typer or rich.
"""
