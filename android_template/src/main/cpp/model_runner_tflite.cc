// ModelRunner on the TFLite C API of LiteRT in Google Play services (the play-services runtime).
#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include "model_runner.h"
#include "tensor_types.h"
#include "tensorflow/lite/c/c_api.h"

namespace packager {

struct ModelRunner::Impl {
  ModelBytes model_bytes;  // read in place by the model: destroyed after it (members outlive ~Impl's body)
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

}  // namespace

const char* ModelRunner::RuntimeName() { return "TFLite C API (LiteRT in Google Play services)"; }

ModelRunner::ModelRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelRunner::~ModelRunner() = default;

std::unique_ptr<ModelRunner> ModelRunner::Create(ModelBytes model_bytes, int threads, std::string* error) {
  std::unique_ptr<Impl> impl(new Impl());
  impl->model_bytes = std::move(model_bytes);
  impl->model = TfLiteModelCreate(impl->model_bytes.data, impl->model_bytes.size);
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

int ModelRunner::InputType(int index) const {
  return static_cast<int>(TfLiteTensorType(TfLiteInterpreterGetInputTensor(impl_->interpreter, index)));
}
int ModelRunner::OutputType(int index) const {
  return static_cast<int>(TfLiteTensorType(TfLiteInterpreterGetOutputTensor(impl_->interpreter, index)));
}
// The TFLite C API has tensor names only (e.g. "serving_default_x:0"), not the signature's keys.
std::string ModelRunner::InputName(int index) const {
  const char* name = TfLiteTensorName(TfLiteInterpreterGetInputTensor(impl_->interpreter, index));
  return name != nullptr ? name : "";
}
std::string ModelRunner::OutputName(int index) const {
  const char* name = TfLiteTensorName(TfLiteInterpreterGetOutputTensor(impl_->interpreter, index));
  return name != nullptr ? name : "";
}

namespace {

bool CountOk(const TfLiteTensor* tensor, size_t count, const char* what, int index, std::string* error) {
  if (count == ElementCount(tensor)) return true;
  *error = std::string(what) + " " + std::to_string(index) + " has " + std::to_string(ElementCount(tensor)) +
           " values, not " + std::to_string(count);
  return false;
}

}  // namespace

bool ModelRunner::SetInput(int index, const float* values, size_t count, std::string* error) {
  TfLiteTensor* tensor = TfLiteInterpreterGetInputTensor(impl_->interpreter, index);
  if (!CountOk(tensor, count, "input", index, error)) return false;
  const TfLiteQuantizationParams q = TfLiteTensorQuantizationParams(tensor);
  const bool quantized = q.scale != 0.0f || q.zero_point != 0;
  return FloatsToTensor(static_cast<int>(TfLiteTensorType(tensor)), quantized ? q.scale : 1.0f, q.zero_point, values,
                        count, TfLiteTensorData(tensor), index, error);
}

bool ModelRunner::SetInputRaw(int index, int type, const void* values, size_t bytes, std::string* error) {
  TfLiteTensor* tensor = TfLiteInterpreterGetInputTensor(impl_->interpreter, index);
  if (!RawTypeOk(type, static_cast<int>(TfLiteTensorType(tensor)), "input", index, error) ||
      !CountOk(tensor, bytes / ElementBytes(type), "input", index, error)) {
    return false;
  }
  return TfLiteTensorCopyFromBuffer(tensor, values, bytes) == kTfLiteOk ||
         (*error = "copying input " + std::to_string(index) + " failed", false);
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
  if (!CountOk(tensor, count, "output", index, error)) return false;
  const TfLiteQuantizationParams q = TfLiteTensorQuantizationParams(tensor);
  const bool quantized = q.scale != 0.0f || q.zero_point != 0;
  return TensorToFloats(static_cast<int>(TfLiteTensorType(tensor)), quantized ? q.scale : 1.0f, q.zero_point,
                        TfLiteTensorData(tensor), count, values, index, error);
}

bool ModelRunner::GetOutputRaw(int index, int type, void* values, size_t bytes, std::string* error) const {
  const TfLiteTensor* tensor = TfLiteInterpreterGetOutputTensor(impl_->interpreter, index);
  if (!RawTypeOk(type, static_cast<int>(TfLiteTensorType(tensor)), "output", index, error) ||
      !CountOk(tensor, bytes / ElementBytes(type), "output", index, error)) {
    return false;
  }
  return TfLiteTensorCopyToBuffer(tensor, values, bytes) == kTfLiteOk ||
         (*error = "copying output " + std::to_string(index) + " failed", false);
}

}  // namespace packager
