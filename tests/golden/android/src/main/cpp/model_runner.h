// Runs one .tflite model. Two ways in and out: floats (SetInput/GetOutput; int8/uint8 tensors are quantized and
// dequantized with the tensor's own scale and zero point, quantization.h; int32/int64/bool tensors converted,
// tensor_types.h), or raw values in the tensor's own element type (SetInputRaw/GetOutputRaw: token ids, int64
// features, bool masks, exactly).
// Two implementations, one per runtime (the module ships the one its build uses):
//   model_runner_litert.cc  LiteRT C API (CompiledModel, tensor buffers) of the bundled runtime, libLiteRt.so
//   model_runner_tflite.cc  TFLite C API of LiteRT in Google Play services
// No JNI and no Android calls in here: the same code runs on a desktop JVM for testing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace packager {

// The model's .tflite bytes, read in place: neither runtime copies them (LiteRT's LiteRtCreateModelFromBuffer and
// TFLite's TfLiteModelCreate both require the buffer to stay valid for the model's lifetime), so `keeper` -- whatever
// owns them: on Android the read-only mapping of the model asset in the APK -- lives exactly as long as the runner.
struct ModelBytes {
  const void* data = nullptr;
  size_t size = 0;
  std::shared_ptr<const void> keeper;  // released after the runtime's model is destroyed
};

class ModelRunner {
 public:
  // Returns nullptr and sets *error when the runtime or the model cannot be loaded or compiled.
  static std::unique_ptr<ModelRunner> Create(ModelBytes model, int threads, std::string* error);
  ~ModelRunner();
  ModelRunner(const ModelRunner&) = delete;
  ModelRunner& operator=(const ModelRunner&) = delete;

  // Inputs and outputs are indexed in the model's (sub)graph order, the same for both runtimes.
  int InputCount() const;
  int OutputCount() const;
  std::vector<int32_t> InputShape(int index) const;
  std::vector<int32_t> OutputShape(int index) const;
  size_t InputSize(int index) const;   // number of elements
  size_t OutputSize(int index) const;  // number of elements

  // Element type codes (tensor_types.h: kTypeFloat32, kTypeInt32, ...) and the signature's names.
  int InputType(int index) const;
  int OutputType(int index) const;
  std::string InputName(int index) const;
  std::string OutputName(int index) const;

  // Each returns false and sets *error on failure.
  bool SetInput(int index, const float* values, size_t count, std::string* error);
  // `type` is the element type of `data` (bytes long); it must be the tensor's own, or int8/uint8 for either
  // 8-bit tensor (the raw quantized values).
  bool SetInputRaw(int index, int type, const void* data, size_t bytes, std::string* error);
  bool Invoke(std::string* error);
  bool GetOutput(int index, float* values, size_t count, std::string* error) const;
  bool GetOutputRaw(int index, int type, void* data, size_t bytes, std::string* error) const;

  // The runtime that runs the model, e.g. "LiteRT C API (libLiteRt.so)".
  static const char* RuntimeName();

 private:
  struct Impl;  // runtime-specific, defined in the runtime's model_runner_*.cc
  explicit ModelRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace packager
