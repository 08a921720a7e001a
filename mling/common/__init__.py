"""The base every part stands on: one error type for bad input, command-line conventions, atomic
outputs, reports, caption text and language ID."""
