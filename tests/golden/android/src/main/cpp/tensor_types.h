// Element types of model tensors as both runtimes number them (LiteRtElementType and TfLiteType share the codes),
// their sizes and names, and the float <-> integer/bool conversions of the float entry points (run(FloatArray)).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "quantization.h"

namespace packager {

constexpr int kTypeFloat32 = 1;
constexpr int kTypeInt32 = 2;
constexpr int kTypeUInt8 = 3;
constexpr int kTypeInt64 = 4;
constexpr int kTypeBool = 6;
constexpr int kTypeInt8 = 9;
constexpr int kTypeInt16 = 7;
constexpr int kTypeUInt16 = 17;

// Bytes per element of a supported type; 0 for the others (string, float16, ...).
inline size_t ElementBytes(int type) {
  switch (type) {
    case kTypeFloat32: case kTypeInt32: return 4;
    case kTypeInt64: return 8;
    case kTypeInt16: case kTypeUInt16: return 2;
    case kTypeUInt8: case kTypeInt8: case kTypeBool: return 1;
    default: return 0;
  }
}

inline const char* ElementTypeName(int type) {
  switch (type) {
    case kTypeFloat32: return "float32";
    case kTypeInt32: return "int32";
    case kTypeUInt8: return "uint8";
    case kTypeInt64: return "int64";
    case kTypeBool: return "bool";
    case kTypeInt8: return "int8";
    case kTypeInt16: return "int16";
    case kTypeUInt16: return "uint16";
    default: return "unsupported";
  }
}

// Floats into an integer (rounded, range-checked) or bool (non-zero) tensor; NaN and out-of-range values are errors.
template <typename T>
bool FromFloat(const float* in, size_t count, T* out, int index, std::string* error) {
  for (size_t i = 0; i < count; ++i) {
    const double v = std::nearbyint(static_cast<double>(in[i]));
    if (std::is_same<T, bool>::value) {
      if (std::isnan(in[i])) return (*error = "input " + std::to_string(index) + " has NaN at element " +
                                              std::to_string(i) + "; a bool tensor cannot hold it", false);
      out[i] = static_cast<T>(in[i] != 0.0f);
      continue;
    }
    if (!(v >= static_cast<double>(std::numeric_limits<T>::lowest()) &&
          v <= static_cast<double>(std::numeric_limits<T>::max()))) {
      *error = "input " + std::to_string(index) + " element " + std::to_string(i) + " (" + std::to_string(in[i]) +
               ") does not fit its integer tensor";
      return false;
    }
    out[i] = static_cast<T>(v);
  }
  return true;
}

template <typename T>
void ToFloat(const T* in, size_t count, float* out) {
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(in[i]);
}

// Floats into a tensor's memory of element type `type` (int8/uint8: quantized with scale and zero_point).
inline bool FloatsToTensor(int type, float scale, int64_t zero_point, const float* in, size_t count, void* out,
                           int index, std::string* error) {
  switch (type) {
    case kTypeFloat32:
      for (size_t i = 0; i < count; ++i) static_cast<float*>(out)[i] = in[i];
      return true;
    case kTypeInt8: return Quantize(in, count, scale, zero_point, static_cast<int8_t*>(out), index, error);
    case kTypeUInt8: return Quantize(in, count, scale, zero_point, static_cast<uint8_t*>(out), index, error);
    case kTypeInt32: return FromFloat(in, count, static_cast<int32_t*>(out), index, error);
    case kTypeInt64: return FromFloat(in, count, static_cast<int64_t*>(out), index, error);
    case kTypeInt16: return FromFloat(in, count, static_cast<int16_t*>(out), index, error);
    case kTypeUInt16: return FromFloat(in, count, static_cast<uint16_t*>(out), index, error);
    case kTypeBool: return FromFloat(in, count, static_cast<bool*>(out), index, error);
    default:
      *error = "input " + std::to_string(index) + " has type " + ElementTypeName(type) + ", which packager cannot feed";
      return false;
  }
}

// A tensor's values of element type `type` as floats (int8/uint8: dequantized).
inline bool TensorToFloats(int type, float scale, int64_t zero_point, const void* in, size_t count, float* out,
                           int index, std::string* error) {
  switch (type) {
    case kTypeFloat32: ToFloat(static_cast<const float*>(in), count, out); return true;
    case kTypeInt8: return Dequantize(static_cast<const int8_t*>(in), count, scale, zero_point, out, index, error);
    case kTypeUInt8: return Dequantize(static_cast<const uint8_t*>(in), count, scale, zero_point, out, index, error);
    case kTypeInt32: ToFloat(static_cast<const int32_t*>(in), count, out); return true;
    case kTypeInt64: ToFloat(static_cast<const int64_t*>(in), count, out); return true;
    case kTypeInt16: ToFloat(static_cast<const int16_t*>(in), count, out); return true;
    case kTypeUInt16: ToFloat(static_cast<const uint16_t*>(in), count, out); return true;
    case kTypeBool: ToFloat(static_cast<const bool*>(in), count, out); return true;
    default:
      *error = "output " + std::to_string(index) + " has type " + ElementTypeName(type) + ", which packager cannot read";
      return false;
  }
}

// Whether raw values of element type `given` may be copied as they are into/out of a tensor of type `tensor`.
inline bool RawTypeOk(int given, int tensor, const char* what, int index, std::string* error) {
  const bool eight = (given == kTypeInt8 || given == kTypeUInt8) && (tensor == kTypeInt8 || tensor == kTypeUInt8);
  if (given == tensor || eight) return true;
  *error = std::string(what) + " " + std::to_string(index) + " is " + ElementTypeName(tensor) + ", not " +
           ElementTypeName(given) + ": use " + (tensor == kTypeInt32 ? "an IntArray" : tensor == kTypeInt64 ?
           "a LongArray" : tensor == kTypeBool ? "a BooleanArray" : tensor == kTypeFloat32 ? "a FloatArray" :
           "a ByteArray or FloatArray");
  return false;
}

}  // namespace packager
