"""EGBAD Inspector's engine: data, networks, training, scoring and export, with no Qt.

The stages are subpackages, each on its own floor, and an import runs only downwards
(``pyproject.toml``'s import-linter contracts; docs/ARCHITECTURE.md draws them):

    cli                      the command line
    console                  what its commands share: the plain line, the progress bar, the stop
    session                  the one surface the window and the command line drive
    deploy                   a model written as ONNX that scores without this package
    train | run              training a model | a scoring run and the files it leaves, live inspection
    score                    how unusual an image is: whole-image, local, AnoGAN, metrics
    model | data             the networks and the checkpoint | the images
    system                   devices, memory, files, processes
    config                   the settings and the presets
    events | pictures        what long work reports | what both faces draw
    errors                   the one exception for problems a user can cause

The GUI (``egbad_gui``) and the command line are two faces of this package; neither holds
training or scoring logic of its own.
"""

__version__ = "0.1.0"
