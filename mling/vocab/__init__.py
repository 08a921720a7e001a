"""A multilingual WordPiece vocabulary that treats every language fairly (`tokenizer_training/build_vocab.py`)."""
