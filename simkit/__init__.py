"""simkit: what long contexts cost when serving language models.

Layers (imports point down the list): cli -> report -> plan -> sim -> calibrate -> costs ->
catalog -> scenario/units. The README describes each.
"""

__version__ = "0.1.0"
