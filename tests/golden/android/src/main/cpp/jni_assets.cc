// The Android-only layer: reads the model from the APK's assets with AAssetManager.
// Kept apart from jni_bridge.cc so the rest of the JNI code also builds and runs on a desktop JVM.
#include <android/asset_manager.h>
#include <android/asset_manager_jni.h>
#include <jni.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "jni_common.h"

using packager::ThrowJava;

extern "C" JNIEXPORT jlong JNICALL Java_com_example_golden_TinyNetQNative_createFromAsset(JNIEnv* env, jclass, jobject asset_manager,
                                                                 jstring path, jint threads) {
  return packager::Guarded(env, jlong{}, [&]() -> jlong {
    if (asset_manager == nullptr || path == nullptr) {
      ThrowJava(env, "java/lang/IllegalArgumentException", "asset manager and asset path must not be null");
      return 0;
    }
    AAssetManager* manager = AAssetManager_fromJava(env, asset_manager);
    const char* c_path = env->GetStringUTFChars(path, nullptr);
    if (c_path == nullptr) return 0;  // OutOfMemoryError is pending
    const std::string asset_path(c_path);
    env->ReleaseStringUTFChars(path, c_path);
    if (manager == nullptr) {
      ThrowJava(env, "java/lang/IllegalArgumentException", "not an android.content.res.AssetManager");
      return 0;
    }
    std::unique_ptr<AAsset, void (*)(AAsset*)> asset(AAssetManager_open(manager, asset_path.c_str(), AASSET_MODE_BUFFER),
                                                     AAsset_close);
    if (!asset) {
      ThrowJava(env, "java/io/FileNotFoundException", "asset not found in the APK: " + asset_path);
      return 0;
    }
    const off_t length = AAsset_getLength(asset.get());
    const void* data = AAsset_getBuffer(asset.get());
    if (data == nullptr || length <= 0) {
      ThrowJava(env, "java/io/IOException", "cannot read asset " + asset_path);
      return 0;
    }
    const auto* begin = static_cast<const uint8_t*>(data);
    return packager::CreateRunnerHandle(env, std::vector<uint8_t>(begin, begin + length), threads);
  });
}
