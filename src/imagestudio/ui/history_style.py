"""History's thumbnails at one fixed size: a single search hit must not fill the whole gallery."""

from __future__ import annotations

THUMB_PX = 150

CSS = f"""
.is-thumbs .grid-container {{ grid-template-columns: repeat(auto-fill, {THUMB_PX}px) !important;
  grid-auto-rows: {THUMB_PX}px !important; justify-content: start; }}
.is-thumbs .grid-container > * {{ width: {THUMB_PX}px !important; height: {THUMB_PX}px !important; }}
"""
