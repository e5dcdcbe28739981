"""meshgen: talking-face clips from a FaceMesh landmark mesh driven by phoneme visemes."""
__version__ = "0.1.0"
