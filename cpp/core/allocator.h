#pragma once
// Caching allocator for tensor storage and kernel scratch buffers. A training or inference loop
// asks for the same sizes every step; handing back a block freed in the previous step avoids
// malloc/free (glibc serves 64-byte-aligned requests through its slow memalign path, and returns
// large blocks to the system, so each step would page-fault them in again).
//
// Sizes are rounded up to a size class (64-byte steps up to 1 KiB, then four classes per power
// of two, so at most 25% is wasted); a freed block goes on its class's free list while the cached
// total stays under a limit (otherwise it goes back to the system). Blocks above kMaxCachedBlock
// are never cached. All blocks are 64-byte aligned. Thread-safe: any thread may free.
#include <cstddef>
#include <cstdint>

namespace nc {

constexpr size_t kMaxCachedBlock = size_t(64) << 20;

// A 64-byte aligned block of at least `nbytes` (nullptr for 0 bytes). Throws std::bad_alloc.
void* cached_alloc(size_t nbytes);
// Returns a block from cached_alloc(nbytes) (the same nbytes) to the cache or the system.
void cached_free(void* p, size_t nbytes);

struct CacheStats {
  size_t cached_bytes;  // held in free lists, ready for reuse
  size_t limit_bytes;   // cached_bytes never exceeds this
  uint64_t hits;        // requests served from a free list
  uint64_t misses;      // requests that went to the system
};
CacheStats cache_stats();
// Releases every cached block to the system (blocks in use are unaffected).
void empty_cache();
// Changes the cap on cached bytes (0 disables caching); frees cached blocks above it.
void set_cache_limit(size_t bytes);

}  // namespace nc
