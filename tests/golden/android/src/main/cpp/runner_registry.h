// The handles Kotlin holds: each names one ModelRunner in a process-wide registry, never a raw pointer.
// - Calls on one runner are serialized (Lease holds its mutex): TFLite interpreters are not thread-safe.
// - Close removes the handle at once; a call already running keeps the runner alive until it returns, so
//   close() during a run frees nothing under it. Handles are never reused: a stale one finds nothing.
// No JNI and no Android calls in here: the same code runs on a desktop JVM for testing.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "model_runner.h"

namespace packager {

struct RunnerEntry;  // a runner and the mutex that serializes calls on it

// Exclusive use of one runner for the lifetime of the lease (empty when the handle is closed or unknown).
class Lease {
 public:
  Lease() = default;
  explicit operator bool() const { return runner_ != nullptr; }
  ModelRunner* operator->() const { return runner_; }

 private:
  friend class RunnerRegistry;
  explicit Lease(std::shared_ptr<RunnerEntry> entry);
  std::shared_ptr<RunnerEntry> entry_;  // keeps the runner alive while leased
  std::unique_lock<std::mutex> lock_;   // serializes calls on it
  ModelRunner* runner_ = nullptr;
};

class RunnerRegistry {
 public:
  // Takes ownership; returns the new handle (> 0).
  static int64_t Add(std::unique_ptr<ModelRunner> runner);
  // Waits for other calls on the same runner to finish; empty if the handle is closed or unknown.
  static Lease Acquire(int64_t handle);
  // Forgets the handle; the runner is destroyed when the last lease on it ends. Unknown handles: no-op.
  static void Remove(int64_t handle);
};

}  // namespace packager
