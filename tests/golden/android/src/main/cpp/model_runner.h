// Runs one TFLite model through the TFLite C API: float in, float out. Quantized (int8/uint8) input and
// output tensors are quantized/dequantized with the tensor's own scale and zero point.
// No JNI and no Android calls in here: the same code runs on a desktop JVM for testing.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct TfLiteModel;
struct TfLiteInterpreterOptions;
struct TfLiteInterpreter;

namespace packager {

// The TFLite error reporter: appends the message to the runner passed as user_data.
void ReportTfLiteError(void* user_data, const char* format, va_list args);

class ModelRunner {
 public:
  // Returns nullptr and sets *error when the model cannot be loaded or its tensors cannot be allocated.
  static std::unique_ptr<ModelRunner> Create(std::vector<uint8_t> model_bytes, int threads, std::string* error);
  ~ModelRunner();
  ModelRunner(const ModelRunner&) = delete;
  ModelRunner& operator=(const ModelRunner&) = delete;

  int InputCount() const;
  int OutputCount() const;
  std::vector<int32_t> InputShape(int index) const;
  std::vector<int32_t> OutputShape(int index) const;
  size_t InputSize(int index) const;   // number of elements
  size_t OutputSize(int index) const;  // number of elements

  // Each returns false and sets *error on failure.
  bool SetInput(int index, const float* values, size_t count, std::string* error);
  bool Invoke(std::string* error);
  bool GetOutput(int index, float* values, size_t count, std::string* error) const;

 private:
  ModelRunner() = default;
  void AppendError(const std::string& message);

  std::vector<uint8_t> model_bytes_;  // must outlive model_
  TfLiteModel* model_ = nullptr;
  TfLiteInterpreterOptions* options_ = nullptr;
  TfLiteInterpreter* interpreter_ = nullptr;
  std::string reported_;  // messages from the TFLite error reporter

  friend void ReportTfLiteError(void* user_data, const char* format, va_list args);
};

}  // namespace packager
