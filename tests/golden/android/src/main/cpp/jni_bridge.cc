// JNI entry points of com.example.golden.TinyNetQNative (Kotlin `external fun`s) over ModelRunner.
// Every failure becomes a Java exception with a message; nothing here aborts the process.
#include <jni.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jni_common.h"
#include "model_runner.h"
#include "runner_registry.h"
#include "tensor_types.h"

using packager::Lease;
using packager::RunnerRegistry;
using packager::ThrowJava;

namespace {

// Exclusive use of the handle's runner until the returned lease ends (calls on one runner are serialized), or an
// empty lease with IllegalStateException pending when the handle is closed: close() during a call is safe.
Lease RunnerOrThrow(JNIEnv* env, jlong handle) {
  Lease runner = RunnerRegistry::Acquire(static_cast<int64_t>(handle));
  if (!runner) ThrowJava(env, "java/lang/IllegalStateException", "the interpreter is closed");
  return runner;
}

bool IndexOk(JNIEnv* env, int index, int count, const char* what) {
  if (index >= 0 && index < count) return true;
  ThrowJava(env, "java/lang/IndexOutOfBoundsException",
            std::string(what) + " index " + std::to_string(index) + " out of range (model has " +
                std::to_string(count) + ")");
  return false;
}

jintArray ToJava(JNIEnv* env, const std::vector<int32_t>& shape) {
  jintArray out = env->NewIntArray(static_cast<jsize>(shape.size()));
  if (out != nullptr && !shape.empty()) {
    std::vector<jint> values(shape.begin(), shape.end());
    env->SetIntArrayRegion(out, 0, static_cast<jsize>(values.size()), values.data());
  }
  return out;
}

// One input from a Java primitive array: FloatArray through the float path (quantized/converted natively), the
// others copied as they are into a tensor of their own type (IntArray: int32, LongArray: int64, ByteArray:
// int8/uint8, BooleanArray: bool). False with a Java exception pending on a wrong type or size.
bool SetTypedInput(JNIEnv* env, packager::ModelRunner& runner, int index, jobject value) {
  std::string error;
  auto is = [&](const char* cls) {
    jclass c = env->FindClass(cls);
    const bool yes = c != nullptr && env->IsInstanceOf(value, c);
    if (c != nullptr) env->DeleteLocalRef(c);
    return yes;
  };
  bool ok = false;
  if (value == nullptr) {
    error = "input " + std::to_string(index) + " is null";
  } else if (is("[F")) {
    auto a = static_cast<jfloatArray>(value);
    std::vector<float> v(static_cast<size_t>(env->GetArrayLength(a)));
    env->GetFloatArrayRegion(a, 0, static_cast<jsize>(v.size()), v.data());
    ok = runner.SetInput(index, v.data(), v.size(), &error);
  } else {
    auto a = static_cast<jarray>(value);
    const size_t n = static_cast<size_t>(env->GetArrayLength(a));
    int type = 0;
    if (is("[I")) type = packager::kTypeInt32;
    else if (is("[J")) type = packager::kTypeInt64;
    else if (is("[Z")) type = packager::kTypeBool;
    else if (is("[B")) type = runner.InputType(index) == packager::kTypeUInt8 ? packager::kTypeUInt8 : packager::kTypeInt8;
    if (type == 0) {
      error = "input " + std::to_string(index) + " must be a FloatArray, IntArray, LongArray, ByteArray or BooleanArray";
    } else {
      void* data = env->GetPrimitiveArrayCritical(a, nullptr);
      if (data == nullptr) return false;  // OutOfMemoryError is pending
      ok = runner.SetInputRaw(index, type, data, n * packager::ElementBytes(type), &error);
      env->ReleasePrimitiveArrayCritical(a, data, JNI_ABORT);
    }
  }
  if (!ok) ThrowJava(env, "java/lang/IllegalArgumentException", error);
  return ok;
}

// One output as a Java array of its type: FloatArray for float32 and (dequantized) int8/uint8, IntArray for int32,
// LongArray for int64, BooleanArray for bool. nullptr with a Java exception pending on failure.
jobject TypedOutput(JNIEnv* env, const packager::ModelRunner& runner, int index) {
  std::string error;
  const size_t n = runner.OutputSize(index);
  const int type = runner.OutputType(index);
  jarray array = nullptr;
  bool ok = false;
  if (type == packager::kTypeInt32 || type == packager::kTypeInt64 || type == packager::kTypeBool) {
    array = type == packager::kTypeInt32 ? static_cast<jarray>(env->NewIntArray(static_cast<jsize>(n)))
            : type == packager::kTypeInt64 ? static_cast<jarray>(env->NewLongArray(static_cast<jsize>(n)))
                                           : static_cast<jarray>(env->NewBooleanArray(static_cast<jsize>(n)));
    if (array == nullptr) return nullptr;
    void* data = env->GetPrimitiveArrayCritical(array, nullptr);
    if (data == nullptr) return nullptr;
    ok = runner.GetOutputRaw(index, type, data, n * packager::ElementBytes(type), &error);
    env->ReleasePrimitiveArrayCritical(array, data, 0);
  } else {
    std::vector<float> values(n);
    ok = runner.GetOutput(index, values.data(), n, &error);
    jfloatArray floats = ok ? env->NewFloatArray(static_cast<jsize>(n)) : nullptr;
    if (ok && floats == nullptr) return nullptr;
    if (ok) env->SetFloatArrayRegion(floats, 0, static_cast<jsize>(n), values.data());
    array = floats;
  }
  if (!ok) {
    ThrowJava(env, "java/lang/IllegalStateException", error);
    return nullptr;
  }
  return array;
}

}  // namespace

extern "C" {

// `model`: a direct ByteBuffer holding the whole .tflite -- on Android the model asset mapped read-only from the APK
// (FileChannel.map), or a direct copy when the asset is compressed. The runtime reads it in place (no copy to the
// native heap); a global reference keeps the buffer, and so the mapping, alive until the runner is destroyed.
JNIEXPORT jlong JNICALL Java_com_example_golden_TinyNetQNative_createFromBuffer(JNIEnv* env, jclass, jobject model, jint threads) {
  return packager::Guarded(env, jlong{}, [&]() -> jlong {
    if (model == nullptr) {
      ThrowJava(env, "java/lang/IllegalArgumentException", "the model buffer is null");
      return 0;
    }
    void* data = env->GetDirectBufferAddress(model);
    const jlong size = env->GetDirectBufferCapacity(model);
    if (data == nullptr || size <= 0) {
      ThrowJava(env, "java/lang/IllegalArgumentException",
                "the model must be a non-empty direct ByteBuffer (FileChannel.map or ByteBuffer.allocateDirect)");
      return 0;
    }
    JavaVM* vm = nullptr;
    if (env->GetJavaVM(&vm) != JNI_OK || vm == nullptr) {
      ThrowJava(env, "java/lang/IllegalStateException", "GetJavaVM failed");
      return 0;
    }
    jobject buffer = env->NewGlobalRef(model);
    if (buffer == nullptr) return 0;  // OutOfMemoryError is pending
    packager::ModelBytes bytes;
    bytes.data = data;
    bytes.size = static_cast<size_t>(size);
    // The runner is destroyed inside a JNI call (close(), the last call on a closed handle, or a failed create), on
    // a thread attached to the VM, so GetEnv finds that thread's JNIEnv.
    bytes.keeper = std::shared_ptr<const void>(buffer, [vm](jobject ref) {
      void* thread_env = nullptr;
      if (vm->GetEnv(&thread_env, JNI_VERSION_1_6) == JNI_OK) static_cast<JNIEnv*>(thread_env)->DeleteGlobalRef(ref);
    });
    return packager::CreateRunnerHandle(env, std::move(bytes), threads);
  });
}

JNIEXPORT jint JNICALL Java_com_example_golden_TinyNetQNative_inputCount(JNIEnv* env, jclass, jlong handle) {
  return packager::Guarded(env, jint{}, [&]() -> jint {
    Lease runner = RunnerOrThrow(env, handle);
    return runner ? runner->InputCount() : 0;
  });
}

JNIEXPORT jint JNICALL Java_com_example_golden_TinyNetQNative_outputCount(JNIEnv* env, jclass, jlong handle) {
  return packager::Guarded(env, jint{}, [&]() -> jint {
    Lease runner = RunnerOrThrow(env, handle);
    return runner ? runner->OutputCount() : 0;
  });
}

JNIEXPORT jintArray JNICALL Java_com_example_golden_TinyNetQNative_inputShape(JNIEnv* env, jclass, jlong handle, jint index) {
  return packager::Guarded(env, jintArray{}, [&]() -> jintArray {
    Lease runner = RunnerOrThrow(env, handle);
    if (!runner || !IndexOk(env, index, runner->InputCount(), "input")) return nullptr;
    return ToJava(env, runner->InputShape(index));
  });
}

JNIEXPORT jintArray JNICALL Java_com_example_golden_TinyNetQNative_outputShape(JNIEnv* env, jclass, jlong handle, jint index) {
  return packager::Guarded(env, jintArray{}, [&]() -> jintArray {
    Lease runner = RunnerOrThrow(env, handle);
    if (!runner || !IndexOk(env, index, runner->OutputCount(), "output")) return nullptr;
    return ToJava(env, runner->OutputShape(index));
  });
}

JNIEXPORT jint JNICALL Java_com_example_golden_TinyNetQNative_inputType(JNIEnv* env, jclass, jlong handle, jint index) {
  return packager::Guarded(env, jint{}, [&]() -> jint {
    Lease runner = RunnerOrThrow(env, handle);
    if (!runner || !IndexOk(env, index, runner->InputCount(), "input")) return 0;
    return runner->InputType(index);
  });
}

JNIEXPORT jint JNICALL Java_com_example_golden_TinyNetQNative_outputType(JNIEnv* env, jclass, jlong handle, jint index) {
  return packager::Guarded(env, jint{}, [&]() -> jint {
    Lease runner = RunnerOrThrow(env, handle);
    if (!runner || !IndexOk(env, index, runner->OutputCount(), "output")) return 0;
    return runner->OutputType(index);
  });
}

JNIEXPORT jstring JNICALL Java_com_example_golden_TinyNetQNative_inputName(JNIEnv* env, jclass, jlong handle, jint index) {
  return packager::Guarded(env, jstring{}, [&]() -> jstring {
    Lease runner = RunnerOrThrow(env, handle);
    if (!runner || !IndexOk(env, index, runner->InputCount(), "input")) return nullptr;
    return env->NewStringUTF(runner->InputName(index).c_str());
  });
}

JNIEXPORT jstring JNICALL Java_com_example_golden_TinyNetQNative_outputName(JNIEnv* env, jclass, jlong handle, jint index) {
  return packager::Guarded(env, jstring{}, [&]() -> jstring {
    Lease runner = RunnerOrThrow(env, handle);
    if (!runner || !IndexOk(env, index, runner->OutputCount(), "output")) return nullptr;
    return env->NewStringUTF(runner->OutputName(index).c_str());
  });
}

JNIEXPORT jobjectArray JNICALL Java_com_example_golden_TinyNetQNative_runTyped(JNIEnv* env, jclass, jlong handle, jobjectArray inputs) {
  return packager::Guarded(env, jobjectArray{}, [&]() -> jobjectArray {
    Lease runner = RunnerOrThrow(env, handle);
    if (!runner) return nullptr;
    if (inputs == nullptr || env->GetArrayLength(inputs) != runner->InputCount()) {
      ThrowJava(env, "java/lang/IllegalArgumentException",
                "the model takes " + std::to_string(runner->InputCount()) + " inputs, got " +
                    std::to_string(inputs == nullptr ? 0 : env->GetArrayLength(inputs)));
      return nullptr;
    }
    for (jsize i = 0; i < env->GetArrayLength(inputs); ++i) {
      jobject value = env->GetObjectArrayElement(inputs, i);
      const bool ok = SetTypedInput(env, *runner.operator->(), i, value);
      env->DeleteLocalRef(value);
      if (!ok) return nullptr;
    }
    std::string error;
    if (!runner->Invoke(&error)) {
      ThrowJava(env, "java/lang/IllegalStateException", error);
      return nullptr;
    }
    jclass object_class = env->FindClass("java/lang/Object");
    if (object_class == nullptr) return nullptr;
    jobjectArray outputs = env->NewObjectArray(runner->OutputCount(), object_class, nullptr);
    if (outputs == nullptr) return nullptr;
    for (int i = 0; i < runner->OutputCount(); ++i) {
      jobject array = TypedOutput(env, *runner.operator->(), i);
      if (array == nullptr) return nullptr;
      env->SetObjectArrayElement(outputs, i, array);
      env->DeleteLocalRef(array);
    }
    return outputs;
  });
}

JNIEXPORT jobjectArray JNICALL Java_com_example_golden_TinyNetQNative_run(JNIEnv* env, jclass, jlong handle, jobjectArray inputs) {
  return packager::Guarded(env, jobjectArray{}, [&]() -> jobjectArray {
    Lease runner = RunnerOrThrow(env, handle);
    if (!runner) return nullptr;
    if (inputs == nullptr || env->GetArrayLength(inputs) != runner->InputCount()) {
      ThrowJava(env, "java/lang/IllegalArgumentException",
                "the model takes " + std::to_string(runner->InputCount()) + " input arrays, got " +
                    std::to_string(inputs == nullptr ? 0 : env->GetArrayLength(inputs)));
      return nullptr;
    }
    std::string error;
    for (jsize i = 0; i < env->GetArrayLength(inputs); ++i) {
      auto array = static_cast<jfloatArray>(env->GetObjectArrayElement(inputs, i));
      if (array == nullptr) {
        ThrowJava(env, "java/lang/IllegalArgumentException", "input " + std::to_string(i) + " is null");
        return nullptr;
      }
      std::vector<float> values(static_cast<size_t>(env->GetArrayLength(array)));
      env->GetFloatArrayRegion(array, 0, static_cast<jsize>(values.size()), values.data());
      env->DeleteLocalRef(array);
      if (!runner->SetInput(i, values.data(), values.size(), &error)) {
        ThrowJava(env, "java/lang/IllegalArgumentException", error);
        return nullptr;
      }
    }
    if (!runner->Invoke(&error)) {
      ThrowJava(env, "java/lang/IllegalStateException", error);
      return nullptr;
    }
    jclass float_array_class = env->FindClass("[F");
    if (float_array_class == nullptr) return nullptr;
    jobjectArray outputs = env->NewObjectArray(runner->OutputCount(), float_array_class, nullptr);
    if (outputs == nullptr) return nullptr;
    for (int i = 0; i < runner->OutputCount(); ++i) {
      std::vector<float> values(runner->OutputSize(i));
      if (!runner->GetOutput(i, values.data(), values.size(), &error)) {
        ThrowJava(env, "java/lang/IllegalStateException", error);
        return nullptr;
      }
      jfloatArray array = env->NewFloatArray(static_cast<jsize>(values.size()));
      if (array == nullptr) return nullptr;  // OutOfMemoryError is pending
      env->SetFloatArrayRegion(array, 0, static_cast<jsize>(values.size()), values.data());
      env->SetObjectArrayElement(outputs, i, array);
      env->DeleteLocalRef(array);
    }
    return outputs;
  });
}

JNIEXPORT void JNICALL Java_com_example_golden_TinyNetQNative_close(JNIEnv* env, jclass, jlong handle) {
  packager::Guarded(env, 0, [&]() -> int {
    RunnerRegistry::Remove(static_cast<int64_t>(handle));  // a call in flight keeps its runner until it returns
    return 0;
  });
}

}  // extern "C"
