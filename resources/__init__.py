"""Files the app needs at run time: the built-in demo data and the icon.

Installed as the `egbad_resources` package (see pyproject.toml) and found through
`importlib.resources`, so a non-editable install has them too.
"""
