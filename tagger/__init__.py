"""tagger: find the instruments in every track of a music library."""
from __future__ import annotations

__version__ = "0.1.0"
