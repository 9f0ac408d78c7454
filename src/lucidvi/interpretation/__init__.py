"""Interpretation results (frozen dataclasses with ``compute()``); the first ones come next."""
