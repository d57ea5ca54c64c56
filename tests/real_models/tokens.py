"""A token-id text model with an int32 input, from a PyPI package that ships its weights.

- ethnicolr 0.9.6 (MIT): race/ethnicity from a last name, `models/census/lstm/census2010_ln_lstm.h5` (Keras 2.5:
  Embedding(977, 32) over 20 character-bigram ids -> LSTM(128) -> softmax over its `census2010_race.csv`). Its
  layers and weights as shipped, re-saved behind an int32 `Input` (token ids as an app holds them; the .h5's input
  is float32). Samples: the first surnames of its own `data/census/census_2010.csv`, encoded as its
  `EthnicolrModelClass.find_ngrams` + `pad_sequences` do (title case, bigram index in the vocab, 0 = unknown,
  pre-padded to 20).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import signature
from .fetch import unpacked

ETHNICOLR = "ethnicolr==0.9.6"


def build_ethnicolr(out: Path) -> dict:
    import keras

    pkg, fetch = unpacked(ETHNICOLR)
    base = pkg / "ethnicolr" / "models" / "census" / "lstm"
    shipped = signature.load_keras(base / "census2010_ln_lstm.h5")
    maxlen = int(shipped.inputs[0].shape[1])
    # Keras 3 cannot read this Keras 2.5 .h5 (tf_keras loads it): the same three layers as Keras 3 layers, each
    # given the loaded layer's settings and weights
    emb, lstm, dense = [layer for layer in shipped.layers if type(layer).__name__ != "InputLayer"]
    layers = [keras.layers.Embedding(emb.input_dim, emb.output_dim, name=emb.name),
              keras.layers.LSTM(lstm.units, activation=lstm.activation.__name__,
                                recurrent_activation=lstm.recurrent_activation.__name__, name=lstm.name),
              keras.layers.Dense(dense.units, activation=dense.activation.__name__, name=dense.name)]
    inp = keras.Input((maxlen,), dtype="int32", name="bigram_ids")
    x = inp
    for new, old in zip(layers, (emb, lstm, dense)):
        x = new(x)
        new.set_weights(old.get_weights())
    model = out / "ethnicolr_census2010_ln.keras"
    keras.Model(inp, x).save(model)
    vocab = (base / "census2010_ln_vocab.csv").read_text().split()[1:]
    races = (base / "census2010_race.csv").read_text().split()[1:]
    (out / "labels.txt").write_text("\n".join(races) + "\n")
    lines = (pkg / "ethnicolr" / "data" / "census" / "census_2010.csv").read_text().splitlines()[1:33]
    index = {w: i for i, w in enumerate(vocab)}
    ids = np.zeros((len(lines), maxlen), np.int32)  # the model's input dtype
    for row, line in enumerate(lines):
        name = line.split(",")[0].strip().title()
        seq = [index.get(name[i:i + 2], 0) for i in range(len(name) - 1)][-maxlen:]
        ids[row, maxlen - len(seq):] = seq  # pad_sequences: pre-padding with 0
    sig = signature.of_keras(signature.load_keras(model))
    np.savez(out / "samples.npz", **{sig["inputs"][0][0]: ids})
    return {
        "model": str(model), "samples": str(out / "samples.npz"), "flags": ["--labels", str(out / "labels.txt")],
        "signature": sig,
        "file_used": "ethnicolr/models/census/lstm/census2010_ln_lstm.h5 (layers + weights as shipped) behind an "
                     "int32 Input",
        "sample_source": f"the first {len(lines)} surnames of ethnicolr/data/census/census_2010.csv, as bigram ids",
        "notes": f"token ids (int32) -> Embedding -> LSTM(128) -> softmax over {races}",
        "fetch": {ETHNICOLR: fetch},
    }
