"""Build the emoji set: open emoji drawings named in 100+ languages by Unicode CLDR.

    python data/emoji_set.py --fetch --output DIR

The code is in `mling.emoji_set.build` (installed with the package); this script is the door the
README names, so it runs from any working directory. `--help` lists the options; docs/emoji.md
explains them.
"""

from mling.emoji_set.build import main

if __name__ == "__main__":
    raise SystemExit(main())
