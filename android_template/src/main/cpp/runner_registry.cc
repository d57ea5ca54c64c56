#include "runner_registry.h"

#include <map>
#include <utility>

namespace packager {

struct RunnerEntry {
  explicit RunnerEntry(std::unique_ptr<ModelRunner> r) : runner(std::move(r)) {}
  std::mutex mutex;
  std::unique_ptr<ModelRunner> runner;
};

Lease::Lease(std::shared_ptr<RunnerEntry> entry)
    : entry_(std::move(entry)), lock_(entry_->mutex), runner_(entry_->runner.get()) {}

namespace {

std::mutex registry_mutex;
std::map<int64_t, std::shared_ptr<RunnerEntry>>& Entries() {
  static auto* entries = new std::map<int64_t, std::shared_ptr<RunnerEntry>>();  // never destroyed at exit
  return *entries;
}
int64_t last_handle = 0;

}  // namespace

int64_t RunnerRegistry::Add(std::unique_ptr<ModelRunner> runner) {
  auto entry = std::make_shared<RunnerEntry>(std::move(runner));
  std::lock_guard<std::mutex> lock(registry_mutex);
  Entries()[++last_handle] = std::move(entry);
  return last_handle;
}

Lease RunnerRegistry::Acquire(int64_t handle) {
  std::shared_ptr<RunnerEntry> entry;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = Entries().find(handle);
    if (it == Entries().end()) return Lease();
    entry = it->second;
  }
  return Lease(std::move(entry));  // waits for the runner's mutex outside the registry lock
}

void RunnerRegistry::Remove(int64_t handle) {
  std::shared_ptr<RunnerEntry> entry;  // destroyed after the registry lock is released
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = Entries().find(handle);
  if (it == Entries().end()) return;
  entry = std::move(it->second);
  Entries().erase(it);
}

}  // namespace packager
