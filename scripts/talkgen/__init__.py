"""talkgen: synthetic talking-head clips with a known audio/video offset (see README.md)."""
__version__ = "0.1.0"
