// Shared by the JNI translation units: Java exceptions instead of crashes, and runner -> handle.
#pragma once

#include <jni.h>

#include <cstdint>
#include <exception>
#include <new>
#include <memory>
#include <string>
#include <utility>

#include "model_runner.h"
#include "runner_registry.h"

namespace packager {

inline void ThrowJava(JNIEnv* env, const char* exception_class, const std::string& message) {
  if (env->ExceptionCheck()) return;  // keep the first exception
  jclass cls = env->FindClass(exception_class);
  if (cls != nullptr) env->ThrowNew(cls, message.c_str());
}

// Runs body() and turns a C++ exception into a pending Java exception, returning on_error instead: an exception
// crossing the JNI boundary would abort the process.
template <typename R, typename F>
R Guarded(JNIEnv* env, R on_error, F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    ThrowJava(env, "java/lang/OutOfMemoryError", "native allocation failed");
  } catch (const std::exception& e) {
    ThrowJava(env, "java/lang/RuntimeException", std::string("native error: ") + e.what());
  } catch (...) {
    ThrowJava(env, "java/lang/RuntimeException", "unknown native error");
  }
  return on_error;
}

// Creates a runner that reads `model` in place; returns its handle (see runner_registry.h), or 0 with a pending Java
// exception.
inline jlong CreateRunnerHandle(JNIEnv* env, ModelBytes model, jint threads) {
  std::string error;
  std::unique_ptr<ModelRunner> runner = ModelRunner::Create(std::move(model), threads, &error);
  if (!runner) {
    ThrowJava(env, "java/lang/IllegalArgumentException", error);
    return 0;
  }
  return static_cast<jlong>(RunnerRegistry::Add(std::move(runner)));
}

}  // namespace packager
