"""Text models: deepcut (Thai word segmentation), textgenrnn (char-level LSTM), chars2vec (word embeddings).

- deepcut 0.7.0.0 ships weights (`deepcut/weight/cnn_without_ne_ab.h5`); the network comes from its own
  `deepcut/model.py` get_convo_nn2() and its features from `deepcut/utils.py` create_feature_array()
  (both imported by path; deepcut's __init__ pulls in scikit-learn/scipy for its tokenizer API).
- textgenrnn 2.0.0 ships `textgenrnn_weights.hdf5` + vocab; its `model.py` cannot be imported under Keras 3
  (a default argument `Adam(lr=4e-3)` raises at import), so textgenrnn_model()'s architecture is rebuilt here
  line for line (Embedding -> 2 x LSTM(128) -> concatenate -> AttentionWeightedAverage -> softmax) with the
  package's own custom layer `AttentionWeightedAverage.py` imported by path, and the weights loaded by name.
- chars2vec 0.1.7 ships `trained_models/eng_50/{model.pkl,weights.h5}`; the network is its own Chars2Vec class
  (`chars2vec/model.py`, imported by path), saved as the embedding sub-model it ships weights for.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

from . import signature
from .fetch import import_path, unpacked

DEEPCUT = "deepcut==0.7.0.0"
TEXTGENRNN = "textgenrnn==2.0.0"
CHARS2VEC = "chars2vec==0.1.7"


def _npz(out: Path, arrays: dict) -> str:
    path = out / "samples.npz"
    np.savez(path, **arrays)
    return str(path)


def build_deepcut(out: Path) -> dict:
    pkg, fetch = unpacked(DEEPCUT)
    model_mod = import_path(pkg / "deepcut" / "model.py", "_corpus_deepcut_model")
    utils = import_path(pkg / "deepcut" / "utils.py", "_corpus_deepcut_utils")
    stop = import_path(pkg / "deepcut" / "stop_words.py", "_corpus_deepcut_stop")
    net = model_mod.get_convo_nn2()
    net.load_weights(pkg / "deepcut" / "weight" / "cnn_without_ne_ab.h5")
    model = out / "deepcut.keras"
    net.save(model)
    sig = signature.of_keras(signature.load_keras(model))
    # Thai text: deepcut's own stop-word list (Apache Lucene's), in sorted order, run together as deepcut sees
    # unsegmented text; one sample per character (its 21-character window), 48 characters
    text = "".join(sorted(stop.THAI_STOP_WORDS))[:48]
    x_char, x_type = utils.create_feature_array(text, n_pad=21)
    names = [n for n, _, _ in sig["inputs"]]  # input 1 = char ids, input 2 = char-type ids (model order)
    return {
        "model": str(model), "samples": _npz(out, {names[0]: x_char.astype(np.float32),
                                                   names[1]: x_type.astype(np.float32)}),
        "flags": [], "signature": sig,
        "file_used": "deepcut/weight/cnn_without_ne_ab.h5 into deepcut/model.py get_convo_nn2()",
        "sample_source": f"{len(text)} characters of deepcut/stop_words.py THAI_STOP_WORDS via utils.create_feature_array",
        "notes": "two inputs of shape (None, 21) float32: character ids and character-type ids, each into an Embedding",
        "fetch": {DEEPCUT: fetch},
    }


def build_textgenrnn(out: Path) -> dict:
    import keras
    from keras.layers import LSTM, Dense, Embedding, Input, concatenate

    pkg, fetch = unpacked(TEXTGENRNN)
    src = pkg / "textgenrnn"
    # imported under its own module name, so the saved model names `AttentionWeightedAverage` as its module
    awa = import_path(src / "AttentionWeightedAverage.py", "AttentionWeightedAverage").AttentionWeightedAverage
    vocab = json.loads((src / "textgenrnn_vocab.json").read_text())
    cfg = {"rnn_layers": 2, "rnn_size": 128, "max_length": 40, "dim_embeddings": 100}  # textgenrnn.py defaults
    inp = Input(shape=(cfg["max_length"],), name="input")
    embedded = Embedding(len(vocab) + 1, cfg["dim_embeddings"], name="embedding")(inp)
    rnns = []
    for i in range(cfg["rnn_layers"]):
        rnns.append(LSTM(cfg["rnn_size"], return_sequences=True, recurrent_activation="sigmoid",
                         name=f"rnn_{i + 1}")(embedded if i == 0 else rnns[-1]))
    attention = awa(name="attention")(concatenate([embedded] + rnns, name="rnn_concat"))
    output = Dense(len(vocab) + 1, name="output", activation="softmax")(attention)
    net = keras.Model(inputs=[inp], outputs=[output])
    _load_cudnn_lstm_weights(net, src / "textgenrnn_weights.hdf5")
    model = out / "textgenrnn.keras"
    net.save(model)
    sig = signature.of_keras(signature.load_keras(model, {"AttentionWeightedAverage": awa}))
    # text: the package's README, 40-character windows encoded like utils.textgenrnn_encode_sequence
    readme = " ".join((pkg / "README.md").read_text().split())
    windows = [readme[i:i + 40] for i in range(0, 40 * 16, 40)]
    ids = np.array([[vocab.get(c, 0) for c in w] for w in windows], np.float32)
    labels = ["<pad>"] + [c for c, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    # a label file holds one name per line: whitespace characters get a visible name
    (out / "labels.txt").write_text("\n".join(c if c.strip() else f"<U+{ord(c):04X}>" for c in labels) + "\n")
    return {
        "model": str(model), "samples": _npz(out, {sig["inputs"][0][0]: ids}),
        "flags": ["--labels", str(out / "labels.txt")],
        "pending_flags": ["--custom-objects", "AttentionWeightedAverage"],
        "env": {"PYTHONPATH": str(src)},
        "signature": sig,
        "file_used": "textgenrnn/textgenrnn_weights.hdf5 into textgenrnn_model()'s architecture (rebuilt) "
                     "+ textgenrnn/AttentionWeightedAverage.py",
        "sample_source": "16 x 40 characters of textgenrnn's README.md, encoded with textgenrnn_vocab.json",
        "notes": "custom layer AttentionWeightedAverage: packager needs --custom-objects AttentionWeightedAverage "
                 f"with {src} on PYTHONPATH; labels = the {len(labels)} vocabulary characters (index 0 = padding)",
        "fetch": {TEXTGENRNN: fetch},
    }


def _load_cudnn_lstm_weights(net, path: Path) -> None:
    """Set weights by layer name from a Keras-2 weights file whose LSTMs were saved as CuDNNLSTM (bias of
    8 x units). Keras 2 converted them on load (`_convert_rnn_weights` / `convert_lstm_weights(from_cudnn=True)`
    in its saving code: per gate, input kernel k -> k.T.reshape(k.shape, order="F"), recurrent kernel -> k.T,
    bias = input bias + recurrent bias); Keras 3 refuses the shapes, so the same conversion is done here."""
    import h5py

    def per_gate(k, fn):
        return np.hstack([fn(g) for g in np.hsplit(k, 4)])

    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        for layer in net.layers:
            if layer.name not in group or not layer.weights:
                continue
            names = [n.decode() if isinstance(n, bytes) else n for n in group[layer.name].attrs["weight_names"]]
            arrays = [np.asarray(group[layer.name][n]) for n in names]
            if len(arrays) == 3 and arrays[2].shape[0] == 2 * arrays[1].shape[1]:  # CuDNNLSTM layout
                kernel, recurrent, bias = arrays
                arrays = [per_gate(kernel, lambda k: k.T.reshape(k.shape, order="F")),
                          per_gate(recurrent, lambda k: k.T), bias.reshape(2, -1).sum(axis=0)]
            layer.set_weights(arrays)


def build_chars2vec(out: Path) -> dict:
    pkg, fetch = unpacked(CHARS2VEC)
    mod = import_path(pkg / "chars2vec" / "model.py", "_corpus_chars2vec_model")
    trained = pkg / "chars2vec" / "trained_models" / "eng_50"
    with open(trained / "model.pkl", "rb") as f:
        emb_dim, char_to_ix = pickle.load(f)
    c2v = mod.Chars2Vec(emb_dim, char_to_ix)
    c2v.embedding_model.load_weights(trained / "weights.h5")
    model = out / "chars2vec_eng_50.keras"
    c2v.embedding_model.save(model)
    sig = signature.of_keras(signature.load_keras(model))
    name = sig["inputs"][0][0]
    # words of chars2vec's README, one-hot per character and pre-padded to 12 steps (as vectorize_words does)
    steps, vocab = 12, len(char_to_ix)
    words = [w.lower() for w in (pkg / "README.md").read_text().split() if w.isalpha() and len(w) <= steps][:24]
    x = np.zeros((len(words), steps, vocab), np.float32)
    for i, w in enumerate(words):
        for t, ch in enumerate(w):
            if ch in char_to_ix:
                x[i, steps - len(w) + t, char_to_ix[ch]] = 1.0
    return {
        "model": str(model), "samples": _npz(out, {name: x}),
        "flags": ["--input-shape", f"{name}=1,{steps},{vocab}"], "signature": sig,
        "file_used": "chars2vec/trained_models/eng_50/weights.h5 into chars2vec/model.py Chars2Vec.embedding_model",
        "sample_source": f"{len(words)} words of chars2vec's README.md, one-hot as Chars2Vec.vectorize_words",
        "notes": f"2 x LSTM({emb_dim}); input (None, None, {vocab}) with a dynamic time axis fixed by --input-shape; "
                 f"output: a {emb_dim}-d word embedding (regression, not classes)",
        "fetch": {CHARS2VEC: fetch},
    }
