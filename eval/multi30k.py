"""Multi30k zero-shot image-text retrieval in en/de/fr/cs, models side by side.

    python eval/multi30k.py --model MODEL_DIR... --multi30k M30K --images IMAGES --output DIR

The code is in `mling.evaluation.multi30k` (installed with the package); this script is the door the README
names, so it runs from any working directory. `--help` lists the options; docs/evaluation.md explains them.
"""

from mling.evaluation.multi30k import main

if __name__ == "__main__":
    raise SystemExit(main())
