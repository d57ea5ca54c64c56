#include "model_runner.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdarg>
#include <cstdio>

#include "tensorflow/lite/c/c_api.h"

namespace packager {

void ReportTfLiteError(void* user_data, const char* format, va_list args) {
  char buffer[512];
  vsnprintf(buffer, sizeof(buffer), format, args);
  static_cast<ModelRunner*>(user_data)->AppendError(buffer);
}

namespace {

size_t ElementCount(const TfLiteTensor* tensor) {
  size_t count = 1;
  for (int32_t d = 0; d < TfLiteTensorNumDims(tensor); ++d) count *= static_cast<size_t>(TfLiteTensorDim(tensor, d));
  return count;
}

std::vector<int32_t> Shape(const TfLiteTensor* tensor) {
  std::vector<int32_t> shape;
  if (tensor == nullptr) return shape;
  for (int32_t d = 0; d < TfLiteTensorNumDims(tensor); ++d) shape.push_back(TfLiteTensorDim(tensor, d));
  return shape;
}

// A usable quantization scale: positive and finite (0 would divide by zero; NaN casts to an integer are undefined).
bool ScaleOk(TfLiteQuantizationParams q, const char* what, int index, std::string* error) {
  if (q.scale > 0.0f && std::isfinite(q.scale)) return true;
  *error = std::string(what) + " " + std::to_string(index) + " is quantized with scale " + std::to_string(q.scale) +
           ": the model's quantization parameters are invalid";
  return false;
}

// Quantizes into out; false with *error (and out untouched) if a value is NaN, which has no integer value.
template <typename Q>
bool Quantize(const float* in, size_t count, TfLiteQuantizationParams q, Q* out, int index, std::string* error) {
  if (!ScaleOk(q, "input", index, error)) return false;
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
    float v = std::round(in[i] / q.scale) + static_cast<float>(q.zero_point);
    out[i] = static_cast<Q>(v < lo ? lo : (v > hi ? hi : v));  // +-inf clamp to the ends
  }
  return true;
}

template <typename Q>
void Dequantize(const Q* in, size_t count, TfLiteQuantizationParams q, float* out) {
  for (size_t i = 0; i < count; ++i) out[i] = q.scale * static_cast<float>(static_cast<int32_t>(in[i]) - q.zero_point);
}

const char* TypeName(TfLiteType type) {
  switch (type) {
    case kTfLiteFloat32: return "float32";
    case kTfLiteInt8: return "int8";
    case kTfLiteUInt8: return "uint8";
    case kTfLiteInt32: return "int32";
    case kTfLiteInt64: return "int64";
    default: return "unsupported";
  }
}

}  // namespace

std::unique_ptr<ModelRunner> ModelRunner::Create(std::vector<uint8_t> model_bytes, int threads, std::string* error) {
  std::unique_ptr<ModelRunner> runner(new ModelRunner());
  runner->model_bytes_ = std::move(model_bytes);
  runner->model_ = TfLiteModelCreate(runner->model_bytes_.data(), runner->model_bytes_.size());
  if (runner->model_ == nullptr) {
    *error = "the model is not a valid .tflite flatbuffer";
    return nullptr;
  }
  runner->options_ = TfLiteInterpreterOptionsCreate();
  TfLiteInterpreterOptionsSetNumThreads(runner->options_, threads > 0 ? threads : 1);
  TfLiteInterpreterOptionsSetErrorReporter(runner->options_, ReportTfLiteError, runner.get());
  runner->interpreter_ = TfLiteInterpreterCreate(runner->model_, runner->options_);
  if (runner->interpreter_ == nullptr) {
    *error = "cannot create a TFLite interpreter for the model: " + runner->reported_;
    return nullptr;
  }
  if (TfLiteInterpreterAllocateTensors(runner->interpreter_) != kTfLiteOk) {
    *error = "cannot allocate the model's tensors: " + runner->reported_;
    return nullptr;
  }
  return runner;
}

ModelRunner::~ModelRunner() {
  if (interpreter_ != nullptr) TfLiteInterpreterDelete(interpreter_);
  if (options_ != nullptr) TfLiteInterpreterOptionsDelete(options_);
  if (model_ != nullptr) TfLiteModelDelete(model_);
}

void ModelRunner::AppendError(const std::string& message) {
  if (!reported_.empty()) reported_ += "; ";
  reported_ += message;
}

int ModelRunner::InputCount() const { return TfLiteInterpreterGetInputTensorCount(interpreter_); }
int ModelRunner::OutputCount() const { return TfLiteInterpreterGetOutputTensorCount(interpreter_); }

std::vector<int32_t> ModelRunner::InputShape(int index) const {
  return Shape(TfLiteInterpreterGetInputTensor(interpreter_, index));
}
std::vector<int32_t> ModelRunner::OutputShape(int index) const {
  return Shape(TfLiteInterpreterGetOutputTensor(interpreter_, index));
}
size_t ModelRunner::InputSize(int index) const {
  return ElementCount(TfLiteInterpreterGetInputTensor(interpreter_, index));
}
size_t ModelRunner::OutputSize(int index) const {
  return ElementCount(TfLiteInterpreterGetOutputTensor(interpreter_, index));
}

bool ModelRunner::SetInput(int index, const float* values, size_t count, std::string* error) {
  TfLiteTensor* tensor = TfLiteInterpreterGetInputTensor(interpreter_, index);
  if (count != ElementCount(tensor)) {
    *error = "input " + std::to_string(index) + " needs " + std::to_string(ElementCount(tensor)) +
             " values, got " + std::to_string(count);
    return false;
  }
  void* data = TfLiteTensorData(tensor);
  switch (TfLiteTensorType(tensor)) {
    case kTfLiteFloat32:
      std::copy(values, values + count, static_cast<float*>(data));
      return true;
    case kTfLiteInt8:
      return Quantize(values, count, TfLiteTensorQuantizationParams(tensor), static_cast<int8_t*>(data), index, error);
    case kTfLiteUInt8:
      return Quantize(values, count, TfLiteTensorQuantizationParams(tensor), static_cast<uint8_t*>(data), index, error);
    default:
      *error = std::string("input ") + std::to_string(index) + " has type " + TypeName(TfLiteTensorType(tensor)) +
               "; only float32, int8 and uint8 inputs are supported";
      return false;
  }
}

bool ModelRunner::Invoke(std::string* error) {
  reported_.clear();
  if (TfLiteInterpreterInvoke(interpreter_) != kTfLiteOk) {
    *error = "TFLite inference failed: " + reported_;
    return false;
  }
  return true;
}

bool ModelRunner::GetOutput(int index, float* values, size_t count, std::string* error) const {
  const TfLiteTensor* tensor = TfLiteInterpreterGetOutputTensor(interpreter_, index);
  if (count != ElementCount(tensor)) {
    *error = "output " + std::to_string(index) + " has " + std::to_string(ElementCount(tensor)) + " values, not " +
             std::to_string(count);
    return false;
  }
  const void* data = TfLiteTensorData(tensor);
  switch (TfLiteTensorType(tensor)) {
    case kTfLiteFloat32: {
      const float* f = static_cast<const float*>(data);
      std::copy(f, f + count, values);
      return true;
    }
    case kTfLiteInt8:
      if (!ScaleOk(TfLiteTensorQuantizationParams(tensor), "output", index, error)) return false;
      Dequantize(static_cast<const int8_t*>(data), count, TfLiteTensorQuantizationParams(tensor), values);
      return true;
    case kTfLiteUInt8:
      if (!ScaleOk(TfLiteTensorQuantizationParams(tensor), "output", index, error)) return false;
      Dequantize(static_cast<const uint8_t*>(data), count, TfLiteTensorQuantizationParams(tensor), values);
      return true;
    default:
      *error = std::string("output ") + std::to_string(index) + " has type " + TypeName(TfLiteTensorType(tensor)) +
               "; only float32, int8 and uint8 outputs are supported";
      return false;
  }
}

}  // namespace packager
