"""The on-disk model folder: layout files, legacy spellings, atomic saves, and Hub resolution."""
