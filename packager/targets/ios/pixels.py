"""A model whose one image input takes whole pixel levels (uint8: the model normalises them itself) is an image model
on iOS too: Core ML takes the picture (an ``ImageType`` of scale 1, bias 0: the pixels themselves), the graph rounds
them and casts them to the model's dtype (``convert._to_model_dtype``), the Swift package has ``classify(image)``,
its golden cases are images and its preprocessing is checked like a float image model's.

``pixel_view`` gives the iOS target that view of the build: the source as an image model, the spec's step 7 off
(mean 0, std 1: the samples already are the pixels, ``packager.samples.load_image``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np


class PixelImageSource:
    """``source`` seen as an image model; everything else (and every attribute set) is the source's own."""

    is_image = True

    def __init__(self, source):
        object.__setattr__(self, "_source", source)

    def __getattr__(self, name):
        return getattr(self._source, name)

    def __setattr__(self, name, value):
        setattr(self._source, name, value)

    def predict(self, batch: dict) -> dict:
        """The original model on pixels that may be fractional (the golden images, resampled): rounded half to even
        and clipped to 0..255 first, as the Core ML graph does (a plain cast to uint8 would truncate)."""
        name = self._source.inputs[0].name
        pixels = np.clip(np.rint(np.asarray(batch[name], np.float64)), 0, 255)
        return self._source.predict({**batch, name: pixels})


def pixel_view(source, spec):
    """(source, spec) as the iOS target builds them: a uint8 pixel-image model (``samples.is_pixel_image``) as an
    image model without mean/std; any other model as it is."""
    from packager.samples import is_pixel_image

    if (isinstance(source, PixelImageSource) or getattr(source, "is_image", False) or not is_pixel_image(source)
            or source.inputs[0].dtype != "uint8"):
        return source, spec  # (an int32 image input stays a Core ML multi-array: Core ML holds int32 itself)
    pre = replace(spec.preprocessing, mean=(0.0,), std=(1.0,), normalize="mean-std")
    return PixelImageSource(source), replace(spec, preprocessing=pre)
