"""The sample set shared by every target and by int8 calibration.

A folder of images (png/jpg/bmp/webp, any depth, sorted by relative path) is decoded lazily, one
image at a time, and turned into the model's input by packager.preprocessing (the one definition every
target implements);
``.npy`` (single-input models) and ``.npz`` (one array per input name) files are memory-mapped and
must already be shaped like the model's inputs. Iteration yields ``{input_name: array (1, ...)}``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from packager.errors import InputError
from packager.memory import check_samples_fit
from packager.paths import check_input_path
from packager.spec import PackageSpec, TensorSpec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
# Decoded and preprocessed images are kept (each image decoded once per process, not once per pass over the samples:
# auto's tries, calibration, the mixed search, the reference each iterate the set again) while they take at most
# this many bytes together; beyond it the rest are decoded on every access, one at a time, as before.
DECODED_BYTES = 64 * 1024 ** 2


class SampleSet:
    def __init__(self, inputs: list[TensorSpec], *, image_paths: list[Path] | None = None,
                 arrays: dict[str, np.ndarray] | None = None, spec: PackageSpec | None = None,
                 where: str = ""):
        self.inputs = inputs
        self.image_paths = image_paths
        self._arrays = arrays
        self._spec = spec
        self.where = where
        self._decoded: dict[int, np.ndarray] = {}  # image index -> its model input (DECODED_BYTES at most)
        self._decoded_bytes = 0

    def __len__(self) -> int:
        if self.image_paths is not None:
            return len(self.image_paths)
        return len(next(iter(self._arrays.values())))

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        if self.image_paths is not None:
            x = self._decoded.get(i)
            if x is None:
                x = load_image(self.image_paths[i], self.inputs[0], self._spec)
                if self._decoded_bytes + x.nbytes <= DECODED_BYTES:
                    self._decoded[i] = x
                    self._decoded_bytes += x.nbytes
            return {self.inputs[0].name: x.copy()}  # a caller writing into its array changes no one else's
        dtypes = {t.name: numpy_dtype(t) for t in self.inputs}
        return {name: np.asarray(a[i : i + 1], dtype=dtypes.get(name, np.float32)) for name, a in self._arrays.items()}

    def stacked(self) -> dict[str, np.ndarray]:
        """All samples at once (only for small sets; iterate for large ones)."""
        rows = list(self)
        return {i.name: np.concatenate([r[i.name] for r in rows]) for i in self.inputs}


def numpy_dtype(tensor: TensorSpec):
    """The model input's dtype: samples are fed as the model takes them ("tensors in, tensors out")."""
    try:
        return np.dtype(tensor.dtype)
    except TypeError:
        return np.dtype(np.float32)


def is_pixel_image(source) -> bool:
    """One NHWC input of 1 or 3 channels whose integer dtype holds whole pixel levels 0..255 (uint8 or wider): an
    image model that normalises its pixels itself, fed the pixels (``load_image``). ``Source.is_image`` is the
    float32 image input the spec's mean/std normalise."""
    ins = getattr(source, "inputs", None) or []
    if len(ins) != 1 or len(ins[0].shape) != 4 or ins[0].shape[-1] not in (1, 3):
        return False
    dtype = numpy_dtype(ins[0])
    return bool(np.issubdtype(dtype, np.integer) and np.iinfo(dtype).max >= 255)


def load_image(path: Path, tensor: TensorSpec, spec: PackageSpec) -> np.ndarray:
    """One image file -> a (1, H, W, C) float32 array, preprocessed the spec's way (packager.preprocessing: EXIF
    orientation, alpha on the background, crop policy, antialiased bilinear resize, colour mode, mean/std). A model
    whose image input is an integer tensor (uint8: it normalises inside) gets the pixels 0..255 before mean/std,
    rounded half to even, in its dtype."""
    from packager.preprocessing import file_input, file_pixels

    _, h, w, c = tensor.sample_shape
    dtype = numpy_dtype(tensor)
    if np.issubdtype(dtype, np.integer):  # a model that takes integer pixels normalises them itself
        px = file_pixels(path, w, h, c, spec.preprocessing)
        return np.clip(np.rint(px), 0, 255).astype(dtype)[None]
    return file_input(path, w, h, c, spec.preprocessing)


def load_samples(spec: PackageSpec, inputs: list[TensorSpec]) -> SampleSet:
    path = spec.samples
    check_input_path(path, "sample set", "--samples takes a folder of images or a .npy/.npz file")
    for i in inputs:
        if i.dtype in ("string", "variant", "resource"):
            raise InputError(f"model input {i.name!r} takes {i.dtype} tensors; packager packages models with "
                             "numeric inputs only", where=str(spec.model),
                             hint="export a model whose inputs are numeric tensors (e.g. token ids, with the "
                                  "text preprocessing done in the app)")
    if path.is_dir():
        return _image_folder(path, spec, inputs)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if len(inputs) != 1:
            raise InputError(
                f"a .npy sample file holds one array but the model has {len(inputs)} inputs",
                where=str(path),
                hint=f"use a .npz with one array per input: {', '.join(i.name for i in inputs)}",
            )
        arrays = {inputs[0].name: _load_npy(path)}
    elif suffix == ".npz":
        arrays = _load_npz(path, inputs)
    else:
        raise InputError(f"unknown sample file type {suffix!r}", where=str(path),
                         hint="use a folder of images, a .npy or a .npz file")
    _check_size(arrays, inputs, path)
    _check_arrays(arrays, inputs, path)
    _check_standardised(arrays, inputs, spec, path)
    return SampleSet(inputs, arrays=arrays, spec=spec, where=str(path))


def _check_standardised(arrays: dict[str, np.ndarray], inputs: list[TensorSpec], spec: PackageSpec, path: Path) -> None:
    """With --normalize per-image/per-channel, array samples of an image input must be standardised already (mean 0,
    deviation 1, or below 1 where the 1/sqrt(N) floor divided): the iOS model standardises its image input itself."""
    pre = spec.preprocessing
    if not pre.standardised:
        return
    for t in inputs:
        if not (len(t.shape) == 4 and t.shape[-1] in (1, 3)):
            continue
        per = pre.normalize == "per-channel"
        for i, x in enumerate(np.asarray(arrays[t.name][:64], np.float64)):
            groups = [x[..., c] for c in range(x.shape[-1])] if per else [x]
            for g in groups:
                m, s = float(g.mean()), float(g.std())
                if abs(m) > 1e-3 or s > 1 + 1e-2:  # below 1: the floor divided (a nearly uniform image)
                    raise InputError(
                        f"--normalize {pre.normalize}: sample {i} of input {t.name!r} is not standardised (mean "
                        f"{m:.4g}, deviation {s:.4g}; expected 0 and 1)", where=str(path),
                        hint="pass the images themselves (a folder), or save (x - mean(x)) / max(std(x), 1/sqrt(N)) "
                             "per sample, or drop --normalize")


def _image_folder(path: Path, spec: PackageSpec, inputs: list[TensorSpec]) -> SampleSet:
    files = sorted(_image_files(path), key=lambda p: p.relative_to(path).as_posix())
    if not files:
        raise InputError("the sample folder holds no images (png, jpg, bmp, webp)", where=str(path),
                         hint="add a few representative images, or pass a .npy/.npz file")
    if not (len(inputs) == 1 and len(inputs[0].shape) == 4 and inputs[0].shape[-1] in (1, 3)):
        desc = ", ".join(f"{i.name}{tuple(i.shape)}" for i in inputs)
        raise InputError(
            f"an image folder needs a model with one NHWC image input (1 or 3 channels); this model has {desc}",
            where=str(path),
            hint="pass the samples as a .npy (one input) or .npz (one array per input name)",
        )
    dtype = numpy_dtype(inputs[0])
    if dtype == np.bool_ or (np.issubdtype(dtype, np.integer) and np.iinfo(dtype).max < 255):
        raise InputError(f"model input {inputs[0].name!r} takes {dtype} values, which cannot hold image pixels "
                         "0..255", where=str(path), hint="pass the samples as a .npy file of that dtype")
    spec.preprocessing.per_channel(inputs[0].shape[-1])  # a wrong --mean/--std count fails here, early
    check_samples_fit(len(files), 4 * int(np.prod(inputs[0].sample_shape)), str(path))
    return SampleSet(inputs, image_paths=files, spec=spec, where=str(path))


def _image_files(path: Path) -> list[Path]:
    """The image files under ``path`` (symbolic links to folders not followed). A folder that cannot be read is
    an error (its images would silently be missing); one that vanishes meanwhile (/proc) is not."""
    import os

    def unreadable(e: OSError) -> None:
        if not isinstance(e, FileNotFoundError):
            raise InputError(f"cannot read the folder {e.filename} inside the sample folder ({e.strerror})",
                             where=str(path), hint="pass a folder of images you can read (or a .npy/.npz file)")

    found = []
    for root, _, names in os.walk(path, onerror=unreadable):
        for name in names:
            p = Path(root) / name
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                found.append(p)
    return found


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:
        raise InputError(f"cannot read .npy file: {e}", where=str(path), hint="write it with numpy.save") from e


def _load_npz(path: Path, inputs: list[TensorSpec]) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise InputError("cannot read .npz file (not a zip archive: corrupt or truncated)", where=str(path),
                         hint="write it with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as z:
            _check_npz_size(z, path)
            data = {k: z[k] for k in z.files}
    except Exception as e:
        raise InputError(f"cannot read .npz file: {e}", where=str(path), hint="write it with numpy.savez") from e
    names = [i.name for i in inputs]
    if len(inputs) == 1 and len(data) == 1 and names[0] not in data:
        data = {names[0]: next(iter(data.values()))}
    missing = [n for n in names if n not in data]
    extra = sorted(set(data) - set(names))
    if missing or extra:
        raise InputError(
            f"the .npz arrays do not match the model inputs (missing: {missing or 'none'}, unexpected: {extra or 'none'})",
            where=str(path),
            hint=f"name one array per input: {', '.join(names)}",
        )
    return {n: data[n] for n in names}


def _check_npz_size(z, path: Path) -> None:
    """An .npz's arrays, from their headers (before anything is decompressed), fit in the free memory."""
    count, per_sample = 0, 0
    for name in z.files:
        try:
            with z.zip.open(name if name in z.zip.namelist() else f"{name}.npy") as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape = read(f)[0]
        except (AttributeError, KeyError, ValueError):
            continue  # loading it says what is wrong
        if shape:
            count = max(count, int(shape[0]))
            per_sample += 4 * int(np.prod(shape[1:]))
    check_samples_fit(count, per_sample, str(path))


def _check_size(arrays: dict[str, np.ndarray], inputs: list[TensorSpec], path: Path) -> None:
    """Before a value is read (a .npy is memory-mapped): the arrays, as float32, fit in the free memory."""
    count = max((len(a) if a.ndim else 0) for a in arrays.values())
    per_sample = sum(4 * int(np.prod(a.shape[1:])) for a in arrays.values() if a.ndim)
    check_samples_fit(count, per_sample, str(path))


def _check_arrays(arrays: dict[str, np.ndarray], inputs: list[TensorSpec], path: Path) -> None:
    counts = {n: len(a) if a.ndim else 0 for n, a in arrays.items()}
    for i in inputs:
        a = arrays[i.name]
        want = i.sample_shape[1:]
        if a.ndim != len(i.shape) or tuple(a.shape[1:]) != want:
            raise InputError(
                f"samples for input {i.name!r} have shape {tuple(a.shape)}, the model expects (N, {', '.join(map(str, want))})",
                where=str(path),
                hint="stack the samples along a first axis, each shaped like one model input",
            )
        want_dtype = numpy_dtype(i)
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
            raise InputError(f"samples for input {i.name!r} have dtype {a.dtype}, expected numbers",
                             where=str(path), hint=f"save {want_dtype} arrays (the model input's dtype)")
        if len(a) == 0:
            raise InputError("the sample set is empty", where=str(path), hint="add at least one sample")
        _check_values(i.name, a, want_dtype, path)
    if len(set(counts.values())) > 1:
        raise InputError(f"the inputs have different sample counts: {counts}", where=str(path),
                         hint="give every input the same number of samples")


def _check_values(name: str, a: np.ndarray, want, path: Path) -> None:
    """The samples as the model will get them (cast to its input dtype): finite, and integers that fit."""
    if np.issubdtype(want, np.floating):
        with np.errstate(over="ignore", invalid="ignore"):
            bad = not np.isfinite(np.asarray(a).astype(want)).all()
        if bad:
            raise InputError(f"samples for input {name!r} contain NaN or infinity (as {want}: values beyond "
                             f"{np.finfo(want).max:.3g} become infinity)", where=str(path),
                             hint="clean the sample arrays")
    elif np.issubdtype(want, np.integer):
        if np.issubdtype(a.dtype, np.floating):
            raise InputError(f"samples for input {name!r} are {a.dtype} but the model takes {want}", where=str(path),
                             hint=f"save the samples as {want} arrays (e.g. numpy.save(f, x.astype('{want}')))")
        info = np.iinfo(want)
        if a.size and (a.min() < info.min or a.max() > info.max):
            raise InputError(f"samples for input {name!r} hold values outside {want}'s range", where=str(path),
                             hint=f"save {want} arrays")
