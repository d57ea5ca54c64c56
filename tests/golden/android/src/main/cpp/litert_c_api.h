// The part of the LiteRT C API (libLiteRt.so, ABI "VERS_1.0") that model_runner_litert.cc calls, declared here
// from LiteRT's public headers (litert/c/*.h, LiteRT 2.3): the bundled runtime's AAR ships the library but no
// headers. The functions are resolved when the first model loads (LiteRtApi::Get), from the libLiteRt.so the
// runtime's AAR puts in the APK — no link-time dependency, so the module builds without extracting the AAR.
// The layouts below are ABI-stable in LiteRT (static_asserts as in its headers); a run on the real library
// (packager's host check) proves the declarations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace packager {
namespace litert {

typedef struct LiteRtEnvironmentT* LiteRtEnvironment;
typedef struct LiteRtModelT* LiteRtModel;
typedef struct LiteRtOptionsT* LiteRtOptions;
typedef struct LiteRtOpaqueOptionsT* LiteRtOpaqueOptions;
typedef struct LiteRtCompiledModelT* LiteRtCompiledModel;
typedef struct LiteRtSignatureT* LiteRtSignature;
typedef struct LiteRtSubgraphT* LiteRtSubgraph;
typedef struct LiteRtTensorT* LiteRtTensor;
typedef struct LiteRtTensorBufferT* LiteRtTensorBuffer;
typedef struct LiteRtTensorBufferRequirementsT* LiteRtTensorBufferRequirements;
typedef struct LiteRtEnvOptionT LiteRtEnvOption;  // only passed as a null array here
typedef size_t LiteRtParamIndex;
typedef int LiteRtHwAcceleratorSet;

typedef int LiteRtStatus;  // an enum in C: kLiteRtStatusOk = 0, errors > 0
constexpr LiteRtStatus kLiteRtStatusOk = 0;

constexpr LiteRtHwAcceleratorSet kLiteRtHwAcceleratorCpu = 1 << 0;

enum LiteRtElementType : int {
  kLiteRtElementTypeInt8 = 9,
  kLiteRtElementTypeUInt8 = 3,
  kLiteRtElementTypeInt32 = 2,
  kLiteRtElementTypeInt64 = 4,
  kLiteRtElementTypeFloat32 = 1,
  kLiteRtElementTypeBool = 6,
};

enum LiteRtTensorTypeId : int { kLiteRtRankedTensorType = 0, kLiteRtUnrankedTensorType = 1 };
enum LiteRtQuantizationTypeId : int { kLiteRtQuantizationNone = 0, kLiteRtQuantizationPerTensor = 1 };
enum LiteRtTensorBufferLockMode : int {
  kLiteRtTensorBufferLockModeRead = 0,
  kLiteRtTensorBufferLockModeWrite = 1,
};

constexpr int kLiteRtTensorMaxRank = 8;

struct LiteRtLayout {
  unsigned int rank : 7;
  unsigned int has_strides : 1;
  int32_t dimensions[kLiteRtTensorMaxRank];
  uint32_t strides[kLiteRtTensorMaxRank];
};

struct LiteRtRankedTensorType {
  int element_type;  // LiteRtElementType
  LiteRtLayout layout;
};

struct LiteRtQuantizationPerTensor {
  float scale;
  int64_t zero_point;
};

#if defined(__SIZEOF_POINTER__) && __SIZEOF_POINTER__ == 8
static_assert(sizeof(LiteRtLayout) == 68, "LiteRtLayout size mismatch");
static_assert(offsetof(LiteRtLayout, dimensions) == 4, "LiteRtLayout dimensions offset mismatch");
static_assert(sizeof(LiteRtRankedTensorType) == 72, "LiteRtRankedTensorType size mismatch");
static_assert(offsetof(LiteRtRankedTensorType, layout) == 4, "LiteRtRankedTensorType layout offset mismatch");
static_assert(sizeof(LiteRtQuantizationPerTensor) == 16, "LiteRtQuantizationPerTensor size mismatch");
static_assert(offsetof(LiteRtQuantizationPerTensor, zero_point) == 8, "zero_point offset mismatch");
#endif

// X(name, return type, parameter list): every function model_runner_litert.cc calls.
#define PACKAGER_LITERT_FUNCTIONS(X)                                                                                \
  X(LiteRtCreateEnvironment, LiteRtStatus, (int, const LiteRtEnvOption*, LiteRtEnvironment*))                      \
  X(LiteRtDestroyEnvironment, void, (LiteRtEnvironment))                                                           \
  X(LiteRtCreateModelFromBuffer, LiteRtStatus, (LiteRtEnvironment, const void*, size_t, LiteRtModel*))             \
  X(LiteRtDestroyModel, void, (LiteRtModel))                                                                       \
  X(LiteRtGetNumModelSignatures, LiteRtStatus, (LiteRtModel, LiteRtParamIndex*))                                   \
  X(LiteRtGetModelSignature, LiteRtStatus, (LiteRtModel, LiteRtParamIndex, LiteRtSignature*))                      \
  X(LiteRtGetNumSignatureInputs, LiteRtStatus, (LiteRtSignature, LiteRtParamIndex*))                               \
  X(LiteRtGetNumSignatureOutputs, LiteRtStatus, (LiteRtSignature, LiteRtParamIndex*))                              \
  X(LiteRtGetSignatureInputName, LiteRtStatus, (LiteRtSignature, LiteRtParamIndex, const char**))                 \
  X(LiteRtGetSignatureOutputName, LiteRtStatus, (LiteRtSignature, LiteRtParamIndex, const char**))                \
  X(LiteRtGetSignatureInputTensorByIndex, LiteRtStatus, (LiteRtSignature, LiteRtParamIndex, LiteRtTensor*))        \
  X(LiteRtGetSignatureOutputTensorByIndex, LiteRtStatus, (LiteRtSignature, LiteRtParamIndex, LiteRtTensor*))       \
  X(LiteRtGetTensorTypeId, LiteRtStatus, (LiteRtTensor, LiteRtTensorTypeId*))                                      \
  X(LiteRtGetRankedTensorType, LiteRtStatus, (LiteRtTensor, LiteRtRankedTensorType*))                              \
  X(LiteRtGetQuantizationTypeId, LiteRtStatus, (LiteRtTensor, LiteRtQuantizationTypeId*))                          \
  X(LiteRtGetPerTensorQuantization, LiteRtStatus, (LiteRtTensor, LiteRtQuantizationPerTensor*))                    \
  X(LiteRtCreateOptions, LiteRtStatus, (LiteRtOptions*))                                                           \
  X(LiteRtDestroyOptions, void, (LiteRtOptions))                                                                   \
  X(LiteRtSetOptionsHardwareAccelerators, LiteRtStatus, (LiteRtOptions, LiteRtHwAcceleratorSet))                   \
  X(LiteRtCreateOpaqueOptions, LiteRtStatus, (const char*, void*, void (*)(void*), LiteRtOpaqueOptions*))          \
  X(LiteRtDestroyOpaqueOptions, void, (LiteRtOpaqueOptions))                                                       \
  X(LiteRtAddOpaqueOptions, LiteRtStatus, (LiteRtOptions, LiteRtOpaqueOptions))                                    \
  X(LiteRtCreateCompiledModel, LiteRtStatus, (LiteRtEnvironment, LiteRtModel, LiteRtOptions, LiteRtCompiledModel*)) \
  X(LiteRtDestroyCompiledModel, void, (LiteRtCompiledModel))                                                       \
  X(LiteRtGetCompiledModelInputBufferRequirements, LiteRtStatus,                                                   \
    (LiteRtCompiledModel, LiteRtParamIndex, LiteRtParamIndex, LiteRtTensorBufferRequirements*))                    \
  X(LiteRtGetCompiledModelOutputBufferRequirements, LiteRtStatus,                                                  \
    (LiteRtCompiledModel, LiteRtParamIndex, LiteRtParamIndex, LiteRtTensorBufferRequirements*))                    \
  X(LiteRtGetCompiledModelInputTensorLayout, LiteRtStatus,                                                         \
    (LiteRtCompiledModel, LiteRtParamIndex, LiteRtParamIndex, LiteRtLayout*))                                      \
  X(LiteRtGetCompiledModelOutputTensorLayouts, LiteRtStatus,                                                       \
    (LiteRtCompiledModel, LiteRtParamIndex, size_t, LiteRtLayout*, bool))                                          \
  X(LiteRtCreateManagedTensorBufferFromRequirements, LiteRtStatus,                                                 \
    (LiteRtEnvironment, const LiteRtRankedTensorType*, LiteRtTensorBufferRequirements, LiteRtTensorBuffer*))       \
  X(LiteRtDestroyTensorBuffer, void, (LiteRtTensorBuffer))                                                         \
  X(LiteRtLockTensorBuffer, LiteRtStatus, (LiteRtTensorBuffer, void**, LiteRtTensorBufferLockMode))                \
  X(LiteRtUnlockTensorBuffer, LiteRtStatus, (LiteRtTensorBuffer))                                                  \
  X(LiteRtRunCompiledModel, LiteRtStatus,                                                                          \
    (LiteRtCompiledModel, LiteRtParamIndex, size_t, LiteRtTensorBuffer*, size_t, LiteRtTensorBuffer*))

// The resolved functions: api->LiteRtCreateEnvironment(...), ...
struct LiteRtApi {
#define PACKAGER_LITERT_POINTER(name, ret, params) ret(*name) params = nullptr;
  PACKAGER_LITERT_FUNCTIONS(PACKAGER_LITERT_POINTER)
#undef PACKAGER_LITERT_POINTER

  // The library's functions, resolved once per process (thread-safe); nullptr with *error when libLiteRt.so
  // cannot be loaded or lacks one of them.
  static const LiteRtApi* Get(std::string* error);
};

// LiteRT's status codes by name (LiteRtGetStatusString is not exported by every build).
const char* StatusName(LiteRtStatus status);

}  // namespace litert
}  // namespace packager
