"""Zero-shot image classification with prompt ensembling, in any language.

    python eval/zero_shot.py --model MODEL_DIR... --images DIR --output DIR

The code is in `mling.evaluation.zero_shot` (installed with the package); this script is the door the README
names, so it runs from any working directory. `--help` lists the options; docs/evaluation.md explains them.
"""

from mling.evaluation.zero_shot import main

if __name__ == "__main__":
    raise SystemExit(main())
