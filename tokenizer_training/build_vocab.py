"""Build a multilingual WordPiece vocabulary that treats every language fairly.

    python tokenizer_training/build_vocab.py --input CAPTIONS... --output VOCAB_DIR

The code is in `mling.vocab.build_vocab` (installed with the package); this script is the door the README
names, so it runs from any working directory. `--help` lists the options; docs/vocabulary.md explains them.
"""

from mling.vocab.build_vocab import main

if __name__ == "__main__":
    raise SystemExit(main())
