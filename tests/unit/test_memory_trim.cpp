// The memory trimmer's rule (metrics/memory_trim.hpp) and the allocator figure it reads.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "metrics/memory_trim.hpp"

using warren::metrics::allocator_in_use_bytes;
using warren::metrics::should_trim;

namespace {
constexpr uint64_t mib = 1ull << 20;
}

TEST_CASE("trim only when at least the minimum and half of what is resident are free") {
  CHECK(should_trim(700 * mib, 10 * mib, 32 * mib));    // after a burst: nearly all free
  CHECK(should_trim(100 * mib, 50 * mib, 32 * mib));    // exactly half free
  CHECK_FALSE(should_trim(100 * mib, 51 * mib, 32 * mib));  // mostly in use: a steady load
  CHECK_FALSE(should_trim(40 * mib, 10 * mib, 32 * mib));   // 30 MiB free: below the minimum
  CHECK_FALSE(should_trim(10 * mib, 20 * mib, 0));  // in use above resident: pages not touched
}

#if !defined(__SANITIZE_ADDRESS__)
TEST_CASE("the allocator's in-use figure follows what is allocated and freed") {
  const uint64_t before = allocator_in_use_bytes();
  // Many small blocks (the size of queued message bodies), kept in the arenas, not mmapped.
  constexpr size_t blocks = 4096, size = 4096;
  auto held = std::make_unique<void*[]>(blocks);
  for (size_t i = 0; i < blocks; ++i) {
    held[i] = std::malloc(size);
    std::memset(held[i], 1, size);
  }
  const uint64_t with = allocator_in_use_bytes();
  CHECK(with >= before + blocks * size);
  for (size_t i = 0; i < blocks; ++i)
    std::free(held[i]);
  CHECK(allocator_in_use_bytes() + blocks * size / 2 < with);
}
#endif
