"""API families apps use that AOSP's current.txt does not hold, written from their published reference pages in
the same signature format: each is a string ``write_stub_jar`` parses with current.txt."""

# The few Google Play services classes the generated Kotlin calls (LiteRT in Play services and its Task API),
# written from their published reference pages, in the same signature format.
PLAY_SERVICES_TFLITE_API = """
package com.google.android.gms.tasks {
  public interface OnFailureListener {
    method public void onFailure(Exception);
  }
  public interface OnSuccessListener<TResult> {
    method public void onSuccess(TResult);
  }
  public abstract class Task<TResult> {
    ctor public Task();
    method public abstract com.google.android.gms.tasks.Task<TResult> addOnFailureListener(com.google.android.gms.tasks.OnFailureListener);
    method public abstract com.google.android.gms.tasks.Task<TResult> addOnSuccessListener(com.google.android.gms.tasks.OnSuccessListener<? super TResult>);
    method public abstract Exception getException();
    method public abstract TResult getResult();
    method public abstract boolean isCanceled();
    method public abstract boolean isComplete();
    method public abstract boolean isSuccessful();
  }
  public final class Tasks {
    method public static <TResult> TResult await(com.google.android.gms.tasks.Task<TResult>) throws java.util.concurrent.ExecutionException, java.lang.InterruptedException;
  }
}
package com.google.android.gms.tflite.java {
  public class TfLiteNative {
    method public static com.google.android.gms.tasks.Task<Void> initialize(android.content.Context);
  }
}
"""


# JUnit 4 and AndroidX Test, what the module's instrumented test (src/androidTest) uses: the androidx.test runner
# and registry apps declare as androidTestImplementation, and JUnit 4's annotations and assertions.
JUNIT4_API = """
package org.junit {
  public class Assert {
    ctor protected Assert();
    method public static void assertEquals(String, long, long);
    method public static void assertEquals(String, float, float, float);
    method public static void assertEquals(String, Object, Object);
    method public static void assertTrue(String, boolean);
    method public static void assertNotNull(String, Object);
    method public static void fail(String);
  }
  public @interface After {
  }
  public @interface Before {
  }
  public @interface Test {
  }
}
package org.junit.runner {
  public abstract class Runner {
    ctor public Runner();
  }
  public @interface RunWith {
    method public abstract Class<? extends org.junit.runner.Runner> value();
  }
}
"""

ANDROIDX_TEST_API = """
package androidx.test.ext.junit.runners {
  public final class AndroidJUnit4 extends org.junit.runner.Runner {
    ctor public AndroidJUnit4(Class<?>) throws java.lang.reflect.InvocationTargetException;
  }
}
package androidx.test.platform.app {
  public final class InstrumentationRegistry {
    method public static android.app.Instrumentation getInstrumentation();
    method public static android.os.Bundle getArguments();
  }
}
"""

# The CameraX classes the module's camera entry point (<Class>Camera.kt: classify(ImageProxy)) and the README's
# analyzer use, from androidx.camera:camera-core's reference pages (toBitmap() since 1.3.0); the module declares
# camera-core compileOnly, so apps without CameraX never load them.
CAMERAX_API = """
package androidx.camera.core {
  public interface ImageInfo {
    method public abstract int getRotationDegrees();
    method public abstract long getTimestamp();
  }
  public interface ImageProxy extends java.lang.AutoCloseable {
    method public abstract void close();
    method public abstract int getFormat();
    method public abstract int getHeight();
    method public abstract androidx.camera.core.ImageInfo getImageInfo();
    method public abstract int getWidth();
    method public default android.graphics.Bitmap toBitmap();
  }
  public abstract class UseCase {
  }
  public final class ImageAnalysis extends androidx.camera.core.UseCase {
    method public void clearAnalyzer();
    method public void setAnalyzer(java.util.concurrent.Executor, androidx.camera.core.ImageAnalysis.Analyzer);
    field public static final int OUTPUT_IMAGE_FORMAT_RGBA_8888 = 2; // 0x2
    field public static final int OUTPUT_IMAGE_FORMAT_YUV_420_888 = 1; // 0x1
    field public static final int STRATEGY_BLOCK_PRODUCER = 1; // 0x1
    field public static final int STRATEGY_KEEP_ONLY_LATEST = 0; // 0x0
  }
  public static interface ImageAnalysis.Analyzer {
    method public abstract void analyze(androidx.camera.core.ImageProxy);
  }
  public static final class ImageAnalysis.Builder {
    ctor public ImageAnalysis.Builder();
    method public androidx.camera.core.ImageAnalysis build();
    method public androidx.camera.core.ImageAnalysis.Builder setBackpressureStrategy(int);
    method public androidx.camera.core.ImageAnalysis.Builder setOutputImageFormat(int);
  }
}
"""

EXTRA_APIS = (PLAY_SERVICES_TFLITE_API,)  # in android-stubs.jar, beside the platform (app code compiles against them)
TEST_APIS = (JUNIT4_API, ANDROIDX_TEST_API)  # a separate small jar for src/androidTest (``write_test_stub_jar``)
