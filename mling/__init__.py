"""mling-align: train and evaluate ALIGN image-text dual encoders, English and multilingual.

The parts, each a subpackage, in the order they stand on each other (docs/architecture.md):

    mling.common      errors, command-line conventions, atomic outputs, reports, text, language ID
    mling.pairs       the pair schema and its parquet / webdataset shards
    mling.vocab       the multilingual WordPiece vocabulary      (tokenizer_training/build_vocab.py)
    mling.filtering   ALIGN's filters on DuckDB or Spark         (data/filter.py)
    mling.synthetic   the demo's noisy multilingual corpus       (data/synthetic.py)
    mling.training    recipe, model, loss, schedule, data stream, checkpoints, export
    mling.evaluation  Multi30k, retrieval sets, zero-shot        (eval/*.py)
    mling.train, mling.export, mling.demo   the training, export and demo entry points
"""

from mling.common import moved

moved.install()  # old module names (mling.filtering.filter, ...) load the moved modules
