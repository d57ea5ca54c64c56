// Float <-> int8/uint8 conversion with a tensor's scale and zero point, shared by both runtimes' runners.
// Invalid parameters and NaN inputs are errors (a message), never undefined behaviour.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

namespace packager {

// A usable quantization scale: positive and finite (0 would divide by zero; NaN casts to an integer are undefined).
inline bool ScaleOk(float scale, const char* what, int index, std::string* error) {
  if (scale > 0.0f && std::isfinite(scale)) return true;
  *error = std::string(what) + " " + std::to_string(index) + " is quantized with scale " + std::to_string(scale) +
           ": the model's quantization parameters are invalid";
  return false;
}

// Quantizes into out; false with *error (and out untouched) if the scale is unusable or a value is NaN, which has
// no integer value. +-inf clamp to the ends of Q's range.
template <typename Q>
bool Quantize(const float* in, size_t count, float scale, int64_t zero_point, Q* out, int index, std::string* error) {
  if (!ScaleOk(scale, "input", index, error)) return false;
  for (size_t i = 0; i < count; ++i) {
    if (std::isnan(in[i])) {
      *error = "input " + std::to_string(index) + " has NaN at element " + std::to_string(i) +
               "; a quantized model cannot represent it";
      return false;
    }
  }
  const float lo = static_cast<float>(std::numeric_limits<Q>::min());
  const float hi = static_cast<float>(std::numeric_limits<Q>::max());
  for (size_t i = 0; i < count; ++i) {
    // rounded half to even (nearbyint in the default rounding mode), as packager's validation (numpy.round) does
    float v = std::nearbyint(in[i] / scale) + static_cast<float>(zero_point);
    out[i] = static_cast<Q>(v < lo ? lo : (v > hi ? hi : v));
  }
  return true;
}

template <typename Q>
bool Dequantize(const Q* in, size_t count, float scale, int64_t zero_point, float* out, int index,
                std::string* error) {
  if (!ScaleOk(scale, "output", index, error)) return false;
  for (size_t i = 0; i < count; ++i) {
    out[i] = scale * static_cast<float>(static_cast<int64_t>(in[i]) - zero_point);
  }
  return true;
}

}  // namespace packager
