"""Package list for setuptools (everything else is in pyproject.toml).

pyproject's ``packages.find`` cannot add a package that lives outside ``sidecar/``; the built-in
ffmpeg profiles do (top-level ``ffmpeg_profiles/``, mapped by ``package-dir`` in pyproject.toml),
so the list is built here: every ``sidecar`` package found on disk, plus that one.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["sidecar", "sidecar.*"]), "sidecar.ffmpeg_profiles"])
