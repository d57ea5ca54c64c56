// ModelRunner on the TFLite C API of LiteRT in Google Play services (the play-services runtime).
#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include "model_runner.h"
#include "quantization.h"
#include "tensorflow/lite/c/c_api.h"

namespace packager {

struct ModelRunner::Impl {
  std::vector<uint8_t> model_bytes;  // must outlive model
  TfLiteModel* model = nullptr;
  TfLiteInterpreterOptions* options = nullptr;
  TfLiteInterpreter* interpreter = nullptr;
  std::string reported;  // messages from the TFLite error reporter

  ~Impl() {
    if (interpreter != nullptr) TfLiteInterpreterDelete(interpreter);
    if (options != nullptr) TfLiteInterpreterOptionsDelete(options);
    if (model != nullptr) TfLiteModelDelete(model);
  }
};

namespace {

// The TFLite error reporter: appends the message to the Impl passed as user_data.
void ReportTfLiteError(void* user_data, const char* format, va_list args) {
  char buffer[512];
  vsnprintf(buffer, sizeof(buffer), format, args);
  std::string& reported = *static_cast<std::string*>(user_data);
  if (!reported.empty()) reported += "; ";
  reported += buffer;
}

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

const char* ModelRunner::RuntimeName() { return "TFLite C API (LiteRT in Google Play services)"; }

ModelRunner::ModelRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelRunner::~ModelRunner() = default;

std::unique_ptr<ModelRunner> ModelRunner::Create(std::vector<uint8_t> model_bytes, int threads, std::string* error) {
  std::unique_ptr<Impl> impl(new Impl());
  impl->model_bytes = std::move(model_bytes);
  impl->model = TfLiteModelCreate(impl->model_bytes.data(), impl->model_bytes.size());
  if (impl->model == nullptr) {
    *error = "the model is not a valid .tflite flatbuffer";
    return nullptr;
  }
  impl->options = TfLiteInterpreterOptionsCreate();
  TfLiteInterpreterOptionsSetNumThreads(impl->options, threads > 0 ? threads : 1);
  TfLiteInterpreterOptionsSetErrorReporter(impl->options, ReportTfLiteError, &impl->reported);
  impl->interpreter = TfLiteInterpreterCreate(impl->model, impl->options);
  if (impl->interpreter == nullptr) {
    *error = "cannot create a TFLite interpreter for the model: " + impl->reported;
    return nullptr;
  }
  if (TfLiteInterpreterAllocateTensors(impl->interpreter) != kTfLiteOk) {
    *error = "cannot allocate the model's tensors: " + impl->reported;
    return nullptr;
  }
  return std::unique_ptr<ModelRunner>(new ModelRunner(std::move(impl)));
}

int ModelRunner::InputCount() const { return TfLiteInterpreterGetInputTensorCount(impl_->interpreter); }
int ModelRunner::OutputCount() const { return TfLiteInterpreterGetOutputTensorCount(impl_->interpreter); }

std::vector<int32_t> ModelRunner::InputShape(int index) const {
  return Shape(TfLiteInterpreterGetInputTensor(impl_->interpreter, index));
}
std::vector<int32_t> ModelRunner::OutputShape(int index) const {
  return Shape(TfLiteInterpreterGetOutputTensor(impl_->interpreter, index));
}
size_t ModelRunner::InputSize(int index) const {
  return ElementCount(TfLiteInterpreterGetInputTensor(impl_->interpreter, index));
}
size_t ModelRunner::OutputSize(int index) const {
  return ElementCount(TfLiteInterpreterGetOutputTensor(impl_->interpreter, index));
}

bool ModelRunner::SetInput(int index, const float* values, size_t count, std::string* error) {
  TfLiteTensor* tensor = TfLiteInterpreterGetInputTensor(impl_->interpreter, index);
  if (count != ElementCount(tensor)) {
    *error = "input " + std::to_string(index) + " needs " + std::to_string(ElementCount(tensor)) +
             " values, got " + std::to_string(count);
    return false;
  }
  void* data = TfLiteTensorData(tensor);
  const TfLiteQuantizationParams q = TfLiteTensorQuantizationParams(tensor);
  switch (TfLiteTensorType(tensor)) {
    case kTfLiteFloat32:
      std::copy(values, values + count, static_cast<float*>(data));
      return true;
    case kTfLiteInt8:
      return Quantize(values, count, q.scale, q.zero_point, static_cast<int8_t*>(data), index, error);
    case kTfLiteUInt8:
      return Quantize(values, count, q.scale, q.zero_point, static_cast<uint8_t*>(data), index, error);
    default:
      *error = std::string("input ") + std::to_string(index) + " has type " + TypeName(TfLiteTensorType(tensor)) +
               "; only float32, int8 and uint8 inputs are supported";
      return false;
  }
}

bool ModelRunner::Invoke(std::string* error) {
  impl_->reported.clear();
  if (TfLiteInterpreterInvoke(impl_->interpreter) != kTfLiteOk) {
    *error = "TFLite inference failed: " + impl_->reported;
    return false;
  }
  return true;
}

bool ModelRunner::GetOutput(int index, float* values, size_t count, std::string* error) const {
  const TfLiteTensor* tensor = TfLiteInterpreterGetOutputTensor(impl_->interpreter, index);
  if (count != ElementCount(tensor)) {
    *error = "output " + std::to_string(index) + " has " + std::to_string(ElementCount(tensor)) + " values, not " +
             std::to_string(count);
    return false;
  }
  const void* data = TfLiteTensorData(tensor);
  const TfLiteQuantizationParams q = TfLiteTensorQuantizationParams(tensor);
  switch (TfLiteTensorType(tensor)) {
    case kTfLiteFloat32: {
      const float* f = static_cast<const float*>(data);
      std::copy(f, f + count, values);
      return true;
    }
    case kTfLiteInt8:
      return Dequantize(static_cast<const int8_t*>(data), count, q.scale, q.zero_point, values, index, error);
    case kTfLiteUInt8:
      return Dequantize(static_cast<const uint8_t*>(data), count, q.scale, q.zero_point, values, index, error);
    default:
      *error = std::string("output ") + std::to_string(index) + " has type " + TypeName(TfLiteTensorType(tensor)) +
               "; only float32, int8 and uint8 outputs are supported";
      return false;
  }
}

}  // namespace packager
