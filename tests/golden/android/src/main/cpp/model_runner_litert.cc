// ModelRunner on the LiteRT C API (CompiledModel + tensor buffers) of the bundled runtime, libLiteRt.so from
// com.google.ai.edge.litert:litert. Runs on the CPU (XNNPACK kernels).
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "litert_c_api.h"
#include "model_runner.h"
#include "tensor_types.h"

namespace packager {

namespace litert {

namespace {

const LiteRtApi* LoadApi(std::string* error) {
  // The runtime's AAR packages libLiteRt.so beside this library; the Kotlin side loads it first
  // (System.loadLibrary("LiteRt")), so this finds the loaded copy by its soname.
  void* lib = dlopen("libLiteRt.so", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    *error = std::string("cannot load libLiteRt.so (the com.google.ai.edge.litert:litert runtime): ") +
             (why != nullptr ? why : "unknown dlopen error");
    return nullptr;
  }
  auto* api = new LiteRtApi();  // lives as long as the process, like the library
  std::string missing;
  // Bind the ABI version these declarations follow (VERS_1.0); a build without symbol versions has plain names.
#define PACKAGER_LITERT_RESOLVE(name, ret, params)                               \
  {                                                                              \
    void* symbol = dlvsym(lib, #name, "VERS_1.0");                               \
    if (symbol == nullptr) symbol = dlsym(lib, #name);                           \
    if (symbol == nullptr) missing += (missing.empty() ? "" : ", ") + std::string(#name); \
    api->name = reinterpret_cast<ret(*) params>(symbol);                         \
  }
  PACKAGER_LITERT_FUNCTIONS(PACKAGER_LITERT_RESOLVE)
#undef PACKAGER_LITERT_RESOLVE
  if (!missing.empty()) {
    *error = "libLiteRt.so lacks the LiteRT C API function(s) " + missing + " (LiteRT 2.3 or newer needed)";
    delete api;
    return nullptr;
  }
  return api;
}

}  // namespace

const LiteRtApi* LiteRtApi::Get(std::string* error) {
  static std::once_flag once;
  static const LiteRtApi* api = nullptr;
  static std::string load_error;
  std::call_once(once, [] { api = LoadApi(&load_error); });
  if (api == nullptr) *error = load_error;
  return api;
}

const char* StatusName(LiteRtStatus status) {
  switch (status) {
    case 0: return "ok";
    case 1: return "invalid argument";
    case 2: return "memory allocation failure";
    case 3: return "runtime failure";
    case 4: return "missing input tensor";
    case 5: return "unsupported";
    case 6: return "not found";
    case 500: return "file I/O error";
    case 501: return "invalid flatbuffer";
    case 504: return "compilation error";
    default: return "error";
  }
}

}  // namespace litert

using namespace litert;  // NOLINT: the C API's names are prefixed already

namespace {

struct Tensor {
  LiteRtRankedTensorType type{};
  std::vector<int32_t> shape;
  size_t elements = 1;
  float scale = 1.0f;  // int8/uint8 tensors: their quantization (none: 1 and 0, the values as they are)
  int64_t zero_point = 0;
  std::string name;  // in the signature
  LiteRtTensor tensor = nullptr;  // the model's tensor the signature binds the name to
  LiteRtTensorBuffer buffer = nullptr;  // owned; nullptr when `storage` is another entry's
  // The entry whose buffer holds the values: this one, or, for an output that is the same model tensor as an input
  // (an identity model) or as an earlier output (two signature names bound to one tensor), that entry. Such outputs
  // are run on that entry's buffer: a tensor bound to two buffers would compute into one and be read from the other.
  const Tensor* storage = this;
};

std::string Failed(const char* what, LiteRtStatus status) {
  return std::string(what) + " failed: LiteRT status " + std::to_string(status) + " (" + StatusName(status) + ")";
}

}  // namespace

struct ModelRunner::Impl {
  const LiteRtApi* api = nullptr;
  ModelBytes model_bytes;  // read in place by the model: destroyed after it (members outlive ~Impl's body)
  LiteRtEnvironment env = nullptr;
  LiteRtModel model = nullptr;
  LiteRtOptions options = nullptr;
  LiteRtCompiledModel compiled = nullptr;
  // In the signature's order: what LiteRtRunCompiledModel takes, and what every index of ModelRunner means (the
  // order of the module's INPUT_NAMES / OUTPUT_NAMES).
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;

  ~Impl() {
    if (api == nullptr) return;
    for (auto* list : {&inputs, &outputs}) {
      for (Tensor& t : *list) {
        if (t.buffer != nullptr) api->LiteRtDestroyTensorBuffer(t.buffer);
      }
    }
    if (compiled != nullptr) api->LiteRtDestroyCompiledModel(compiled);
    if (options != nullptr) api->LiteRtDestroyOptions(options);
    if (model != nullptr) api->LiteRtDestroyModel(model);
    if (env != nullptr) api->LiteRtDestroyEnvironment(env);
  }

  // Reads one signature tensor's type, shape and quantization.
  bool Describe(LiteRtTensor tensor, const char* what, size_t index, Tensor* out, std::string* error) const {
    LiteRtTensorTypeId type_id;
    if (api->LiteRtGetTensorTypeId(tensor, &type_id) != kLiteRtStatusOk || type_id != kLiteRtRankedTensorType) {
      *error = std::string(what) + " " + std::to_string(index) + " has no fixed rank; only ranked tensors are supported";
      return false;
    }
    LiteRtStatus s = api->LiteRtGetRankedTensorType(tensor, &out->type);
    if (s != kLiteRtStatusOk) {
      *error = Failed("LiteRtGetRankedTensorType", s);
      return false;
    }
    const int type = out->type.element_type;
    if (ElementBytes(type) == 0) {
      *error = std::string(what) + " " + std::to_string(index) + " has type " + ElementTypeName(type) +
               " (code " + std::to_string(type) + "); supported: float32, int32, int64, int16, uint16, uint8, int8 and bool";
      return false;
    }
    LiteRtQuantizationTypeId q = kLiteRtQuantizationNone;
    if ((type == kLiteRtElementTypeInt8 || type == kLiteRtElementTypeUInt8) &&
        api->LiteRtGetQuantizationTypeId(tensor, &q) == kLiteRtStatusOk && q != kLiteRtQuantizationNone) {
      LiteRtQuantizationPerTensor params{};
      if (q != kLiteRtQuantizationPerTensor || api->LiteRtGetPerTensorQuantization(tensor, &params) != kLiteRtStatusOk) {
        *error = std::string(what) + " " + std::to_string(index) + " is " + ElementTypeName(type) +
                 " quantized per axis; only per-tensor quantization is supported on inputs and outputs";
        return false;
      }
      out->scale = params.scale;
      out->zero_point = params.zero_point;
    }
    return true;
  }

  // Takes the shape the compiled model allocated (the model's own shape, where the signature may say -1 for the
  // batch): the layout the tensor buffer is created with.
  static bool SetLayout(const LiteRtLayout& layout, const char* what, size_t index, Tensor* out, std::string* error) {
    out->type.layout = layout;
    out->shape.clear();
    out->elements = 1;
    for (unsigned d = 0; d < layout.rank; ++d) {
      const int32_t dim = layout.dimensions[d];
      if (dim < 0) {
        *error = std::string(what) + " " + std::to_string(index) + " has a dynamic dimension; fix the model's shape";
        return false;
      }
      out->shape.push_back(dim);
      out->elements *= static_cast<size_t>(dim);
    }
    return true;
  }

  // The CPU accelerator's thread count: LiteRT's CPU options are an opaque option whose identifier is "xnnpack"
  // and whose payload is a TOML string ("num_threads = N"), parsed by libLiteRt.so itself (litert_cpu_options.cc:
  // the client-side builder of that string is not in the library's exports, so the module writes the string).
  bool SetCpuThreads(int threads, std::string* error) {
    const std::string toml = "num_threads = " + std::to_string(threads) + "\n";
    char* payload = static_cast<char*>(std::malloc(toml.size() + 1));
    if (payload == nullptr) return (*error = "out of memory for the CPU options", false);
    std::memcpy(payload, toml.c_str(), toml.size() + 1);
    LiteRtOpaqueOptions cpu = nullptr;
    LiteRtStatus s = api->LiteRtCreateOpaqueOptions("xnnpack", payload, &std::free, &cpu);
    if (s != kLiteRtStatusOk) {
      std::free(payload);
      return (*error = Failed("creating the CPU thread options", s), false);
    }
    s = api->LiteRtAddOpaqueOptions(options, cpu);  // takes ownership
    if (s != kLiteRtStatusOk) {
      api->LiteRtDestroyOpaqueOptions(cpu);
      return (*error = Failed("adding the CPU thread options", s), false);
    }
    return true;
  }

  bool Init(int threads, std::string* error) {
    LiteRtStatus s = api->LiteRtCreateEnvironment(0, nullptr, &env);
    if (s != kLiteRtStatusOk) return (*error = Failed("LiteRtCreateEnvironment", s), false);
    s = api->LiteRtCreateModelFromBuffer(env, model_bytes.data, model_bytes.size, &model);
    if (s != kLiteRtStatusOk) {
      *error = "the model is not a valid .tflite flatbuffer (" + Failed("LiteRtCreateModelFromBuffer", s) + ")";
      return false;
    }
    LiteRtParamIndex signatures = 0;
    LiteRtSignature signature = nullptr;
    if (api->LiteRtGetNumModelSignatures(model, &signatures) != kLiteRtStatusOk || signatures == 0 ||
        api->LiteRtGetModelSignature(model, 0, &signature) != kLiteRtStatusOk) {
      *error = "the model has no signature (packager converts with the serving_default signature)";
      return false;
    }
    s = api->LiteRtCreateOptions(&options);
    if (s == kLiteRtStatusOk) s = api->LiteRtSetOptionsHardwareAccelerators(options, kLiteRtHwAcceleratorCpu);
    if (s != kLiteRtStatusOk) return (*error = Failed("creating the CPU options", s), false);
    if (threads > 0 && !SetCpuThreads(threads, error)) return false;
    s = api->LiteRtCreateCompiledModel(env, model, options, &compiled);
    if (s != kLiteRtStatusOk) return (*error = Failed("compiling the model (LiteRtCreateCompiledModel)", s), false);

    LiteRtParamIndex n_in = 0, n_out = 0;
    if (api->LiteRtGetNumSignatureInputs(signature, &n_in) != kLiteRtStatusOk ||
        api->LiteRtGetNumSignatureOutputs(signature, &n_out) != kLiteRtStatusOk) {
      *error = "cannot read the model signature's inputs and outputs";
      return false;
    }
    inputs.resize(n_in);
    outputs.resize(n_out);
    std::vector<LiteRtLayout> output_layouts(n_out);
    s = n_out == 0 ? kLiteRtStatusOk
                   : api->LiteRtGetCompiledModelOutputTensorLayouts(compiled, 0, n_out, output_layouts.data(), false);
    if (s != kLiteRtStatusOk) return (*error = Failed("LiteRtGetCompiledModelOutputTensorLayouts", s), false);
    for (int pass = 0; pass < 2; ++pass) {
      const bool input = pass == 0;
      std::vector<Tensor>& list = input ? inputs : outputs;
      for (size_t j = 0; j < list.size(); ++j) {
        LiteRtTensor tensor;
        s = input ? api->LiteRtGetSignatureInputTensorByIndex(signature, j, &tensor)
                  : api->LiteRtGetSignatureOutputTensorByIndex(signature, j, &tensor);
        if (s != kLiteRtStatusOk) return (*error = Failed("reading the signature's tensors", s), false);
        if (!Describe(tensor, input ? "input" : "output", j, &list[j], error)) return false;
        const char* name = nullptr;
        if ((input ? api->LiteRtGetSignatureInputName(signature, j, &name)
                   : api->LiteRtGetSignatureOutputName(signature, j, &name)) == kLiteRtStatusOk && name != nullptr) {
          list[j].name = name;
        }
        LiteRtLayout layout = input ? LiteRtLayout{} : output_layouts[j];
        if (input) {
          s = api->LiteRtGetCompiledModelInputTensorLayout(compiled, 0, j, &layout);
          if (s != kLiteRtStatusOk) return (*error = Failed("LiteRtGetCompiledModelInputTensorLayout", s), false);
        }
        if (!SetLayout(layout, input ? "input" : "output", j, &list[j], error)) return false;
        list[j].tensor = tensor;
        list[j].storage = &list[j];
        if (!input) {
          for (const Tensor& other : inputs) {
            if (other.tensor == tensor) list[j].storage = &other;
          }
          for (size_t k = 0; k < j && list[j].storage == &list[j]; ++k) {
            if (outputs[k].tensor == tensor) list[j].storage = outputs[k].storage;
          }
          if (list[j].storage != &list[j]) continue;  // no buffer of its own
        }
        LiteRtTensorBufferRequirements requirements;
        s = input ? api->LiteRtGetCompiledModelInputBufferRequirements(compiled, 0, j, &requirements)
                  : api->LiteRtGetCompiledModelOutputBufferRequirements(compiled, 0, j, &requirements);
        if (s == kLiteRtStatusOk) {
          s = api->LiteRtCreateManagedTensorBufferFromRequirements(env, &list[j].type, requirements, &list[j].buffer);
        }
        if (s != kLiteRtStatusOk) return (*error = Failed("creating a tensor buffer", s), false);
      }
    }
    return true;
  }
};

const char* ModelRunner::RuntimeName() { return "LiteRT C API (CompiledModel, libLiteRt.so)"; }

ModelRunner::ModelRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelRunner::~ModelRunner() = default;

std::unique_ptr<ModelRunner> ModelRunner::Create(ModelBytes model_bytes, int threads, std::string* error) {
  std::unique_ptr<Impl> impl(new Impl());
  impl->api = LiteRtApi::Get(error);
  if (impl->api == nullptr) return nullptr;
  impl->model_bytes = std::move(model_bytes);
  if (!impl->Init(threads, error)) return nullptr;
  return std::unique_ptr<ModelRunner>(new ModelRunner(std::move(impl)));
}

int ModelRunner::InputCount() const { return static_cast<int>(impl_->inputs.size()); }
int ModelRunner::OutputCount() const { return static_cast<int>(impl_->outputs.size()); }

std::vector<int32_t> ModelRunner::InputShape(int index) const {
  return impl_->inputs[static_cast<size_t>(index)].shape;
}
std::vector<int32_t> ModelRunner::OutputShape(int index) const {
  return impl_->outputs[static_cast<size_t>(index)].shape;
}
size_t ModelRunner::InputSize(int index) const {
  return impl_->inputs[static_cast<size_t>(index)].elements;
}
size_t ModelRunner::OutputSize(int index) const {
  return impl_->outputs[static_cast<size_t>(index)].elements;
}

int ModelRunner::InputType(int index) const {
  return impl_->inputs[static_cast<size_t>(index)].type.element_type;
}
int ModelRunner::OutputType(int index) const {
  return impl_->outputs[static_cast<size_t>(index)].type.element_type;
}
std::string ModelRunner::InputName(int index) const {
  return impl_->inputs[static_cast<size_t>(index)].name;
}
std::string ModelRunner::OutputName(int index) const {
  return impl_->outputs[static_cast<size_t>(index)].name;
}

namespace {

// Locks t's buffer for `mode` after checking that `count` elements is its size; *data is its memory.
bool Lock(const LiteRtApi* api, const Tensor& t, LiteRtTensorBufferLockMode mode, size_t count, const char* what,
          int index, void** data, std::string* error) {
  if (count != t.elements) {
    *error = std::string(what) + " " + std::to_string(index) + " has " + std::to_string(t.elements) +
             " values, not " + std::to_string(count);
    return false;
  }
  LiteRtStatus s = api->LiteRtLockTensorBuffer(t.storage->buffer, data, mode);
  if (s != kLiteRtStatusOk || *data == nullptr) return (*error = Failed("LiteRtLockTensorBuffer", s), false);
  return true;
}

}  // namespace

bool ModelRunner::SetInput(int index, const float* values, size_t count, std::string* error) {
  const Tensor& t = impl_->inputs[static_cast<size_t>(index)];
  void* data = nullptr;
  if (!Lock(impl_->api, t, kLiteRtTensorBufferLockModeWrite, count, "input", index, &data, error)) return false;
  const bool ok = FloatsToTensor(t.type.element_type, t.scale, t.zero_point, values, count, data, index, error);
  impl_->api->LiteRtUnlockTensorBuffer(t.storage->buffer);
  return ok;
}

bool ModelRunner::SetInputRaw(int index, int type, const void* values, size_t bytes, std::string* error) {
  const Tensor& t = impl_->inputs[static_cast<size_t>(index)];
  if (!RawTypeOk(type, t.type.element_type, "input", index, error)) return false;
  void* data = nullptr;
  const size_t count = bytes / ElementBytes(type);
  if (!Lock(impl_->api, t, kLiteRtTensorBufferLockModeWrite, count, "input", index, &data, error)) return false;
  std::memcpy(data, values, bytes);
  impl_->api->LiteRtUnlockTensorBuffer(t.storage->buffer);
  return true;
}

bool ModelRunner::Invoke(std::string* error) {
  std::vector<LiteRtTensorBuffer> in, out;
  for (const Tensor& t : impl_->inputs) in.push_back(t.buffer);
  for (const Tensor& t : impl_->outputs) out.push_back(t.storage->buffer);
  LiteRtStatus s = impl_->api->LiteRtRunCompiledModel(impl_->compiled, 0, in.size(), in.data(), out.size(), out.data());
  if (s != kLiteRtStatusOk) return (*error = Failed("LiteRT inference (LiteRtRunCompiledModel)", s), false);
  return true;
}

bool ModelRunner::GetOutput(int index, float* values, size_t count, std::string* error) const {
  const Tensor& t = impl_->outputs[static_cast<size_t>(index)];
  void* data = nullptr;
  if (!Lock(impl_->api, t, kLiteRtTensorBufferLockModeRead, count, "output", index, &data, error)) return false;
  const bool ok = TensorToFloats(t.type.element_type, t.scale, t.zero_point, data, count, values, index, error);
  impl_->api->LiteRtUnlockTensorBuffer(t.storage->buffer);
  return ok;
}

bool ModelRunner::GetOutputRaw(int index, int type, void* values, size_t bytes, std::string* error) const {
  const Tensor& t = impl_->outputs[static_cast<size_t>(index)];
  if (!RawTypeOk(type, t.type.element_type, "output", index, error)) return false;
  void* data = nullptr;
  const size_t count = bytes / ElementBytes(type);
  if (!Lock(impl_->api, t, kLiteRtTensorBufferLockModeRead, count, "output", index, &data, error)) return false;
  std::memcpy(values, data, bytes);
  impl_->api->LiteRtUnlockTensorBuffer(t.storage->buffer);
  return true;
}

}  // namespace packager
