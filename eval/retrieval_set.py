"""Image-text retrieval on any captioned image set, per language, models side by side.

    python eval/retrieval_set.py --model MODEL_DIR... --captions FILE --images DIR --output DIR

The code is in `mling.evaluation.retrieval_set` (installed with the package); this script is the door the README
names, so it runs from any working directory. `--help` lists the options; docs/evaluation.md explains them.
"""

from mling.evaluation.retrieval_set import main

if __name__ == "__main__":
    raise SystemExit(main())
