"""Generate the demo's noisy multilingual corpus and its Multi30k-layout test set.

    python data/synthetic.py --output DIR

The code is in `mling.synthetic.generate` (installed with the package); this script is the door the README
names, so it runs from any working directory. `--help` lists the options; docs/demo.md explains them.
"""

from mling.synthetic.generate import main

if __name__ == "__main__":
    raise SystemExit(main())
