"""jam: a real-time MIDI improvisation partner (call and response)."""

__version__ = "0.1.0"
