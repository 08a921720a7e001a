"""The demo's synthetic corpus: noisy multilingual image-alt-text pairs and a Multi30k-layout test set."""
