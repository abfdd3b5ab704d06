"""Data: image sources, curation filters, degradations, suite and manifest builders."""
