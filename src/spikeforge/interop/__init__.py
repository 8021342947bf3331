"""Bridges to other libraries: CLIP encoders for NeuroCLIP (:mod:`.clip`, optional ``transformers``)."""
