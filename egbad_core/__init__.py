"""EGBAD Inspector's engine: data, networks, training, scoring and export, with no Qt.

The GUI (`egbad_gui`) and the command line (`egbad_core.cli`) are two faces of this package;
neither holds training or scoring logic of its own.
"""

__version__ = "0.1.0"
