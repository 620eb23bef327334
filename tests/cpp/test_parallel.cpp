// Standalone test of the work-sharing pool (core/parallel.h): every item visited exactly once,
// chunk boundaries that depend on the range and grain only (never on the thread count), nested
// calls inline, exceptions carried to the caller, StepTeam phases, several caller threads at once.
// Build with -fsanitize=thread to check the pool's synchronisation:
//   g++ -std=c++17 -O1 -g -fsanitize=thread -fopenmp -Icpp tests/cpp/test_parallel.cpp cpp/core/parallel.cpp
// Usage: test_parallel -> runs the checks, last line "N passed, N failed".
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "core/parallel.h"

static int g_pass = 0, g_fail = 0;

static void check(bool ok, const char* what, long a = 0, long b = 0) {
  if (ok) {
    ++g_pass;
  } else {
    ++g_fail;
    std::printf("FAIL %s (%ld, %ld)\n", what, a, b);
  }
}

// The chunks parallel_for hands to its body, as a sorted set of (begin, end).
static std::set<std::pair<int64_t, int64_t>> chunks_of(int threads, int64_t begin, int64_t end, int64_t grain) {
  nc::set_num_threads(threads);
  std::mutex mu;
  std::set<std::pair<int64_t, int64_t>> out;
  std::vector<std::atomic<int>> seen(static_cast<size_t>(end - begin));
  nc::parallel_for(begin, end, grain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) seen[static_cast<size_t>(i - begin)].fetch_add(1);
    std::lock_guard<std::mutex> lock(mu);
    out.insert({b, e});
  });
  bool once = true;
  for (auto& s : seen) once = once && s.load() == 1;
  check(once, "every item exactly once", end - begin, grain);
  return out;
}

static void test_chunks() {
  const int64_t sizes[] = {1, 5, 64, 65, 1000, 4097, 100000, 1 << 20};
  const int64_t grains[] = {1, 7, 64, 4096, 32768};
  for (int64_t n : sizes)
    for (int64_t g : grains) {
      const auto one = chunks_of(1, 3, 3 + n, g);
      for (int t : {2, 3, 8}) check(chunks_of(t, 3, 3 + n, g) == one, "chunks independent of the thread count", n, g);
      if (n > g) {
        const int64_t size = nc::detail::chunk_size(n, g);
        const auto two = chunks_of(2, 3, 3 + n, g);
        bool fixed = !two.empty();
        for (const auto& c : two) fixed = fixed && (c.first - 3) % size == 0 && (c.second - c.first == size || c.second == 3 + n);
        check(fixed, "chunk boundaries fixed by range and grain", n, g);
        check(static_cast<int64_t>(two.size()) <= nc::detail::kMaxChunks, "at most kMaxChunks chunks", n, g);
      }
    }
}

static void test_nested_inline() {
  nc::set_num_threads(4);
  std::atomic<int> inner_threads{0}, bad{0};
  nc::parallel_for(0, 64, 1, [&](int64_t, int64_t) {
    if (nc::get_num_threads() != 1) bad.fetch_add(1);
    const std::thread::id self = std::this_thread::get_id();
    nc::parallel_for(0, 1000, 1, [&](int64_t, int64_t) {
      if (std::this_thread::get_id() != self) inner_threads.fetch_add(1);
    });
  });
  check(bad.load() == 0 && inner_threads.load() == 0, "nested calls run on the calling thread");
}

static void test_exception() {
  nc::set_num_threads(4);
  bool caught = false;
  try {
    nc::parallel_for(0, 1000, 1, [&](int64_t b, int64_t) {
      if (b == 320) throw std::runtime_error("chunk failed");
    });
  } catch (const std::runtime_error&) {
    caught = true;
  }
  check(caught, "an exception in a chunk reaches the caller");
  std::atomic<int64_t> sum{0};
  nc::parallel_for(0, 1000, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) sum.fetch_add(i);
  });
  check(sum.load() == 999 * 1000 / 2, "the pool works after an exception", sum.load());
}

static void test_step_team() {
  for (int threads : {1, 2, 4}) {
    const int64_t phases = 200, blocks = 7;
    // Phase p reads buffer p % 2 (written by phase p - 1) and writes the other one.
    std::vector<int64_t> buf[2] = {std::vector<int64_t>(blocks, 1), std::vector<int64_t>(blocks, 0)};
    nc::StepTeam team(threads, phases);
    team.run([&] {
      int64_t phase = 0;
      for (int64_t p = 0; p < phases; ++p)
        team.share(phase, blocks, [&](int64_t b) {
          const auto& in = buf[p % 2];
          buf[(p + 1) % 2][b] = (in[b] + 3 * in[(b + 1) % blocks] + p) % 1000003;
        });
    });
    std::vector<int64_t> serial(blocks, 1);
    for (int64_t p = 0; p < phases; ++p) {
      std::vector<int64_t> next(blocks);
      for (int64_t b = 0; b < blocks; ++b) next[b] = (serial[b] + 3 * serial[(b + 1) % blocks] + p) % 1000003;
      serial = next;
    }
    check(buf[phases % 2] == serial, "StepTeam phases give the serial result", threads);
  }
}

static void test_several_callers() {
  nc::set_num_threads(2);
  std::atomic<int> bad{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int r = 0; r < 200; ++r) {
        std::vector<int> hit(5000, 0);
        nc::parallel_for(0, 5000, 16, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hit[static_cast<size_t>(i)] += 1;
        });
        for (int h : hit) bad.fetch_add(h != 1);
      }
    });
  for (auto& t : callers) t.join();
  check(bad.load() == 0, "several caller threads at once", bad.load());
}

int main() {
  test_chunks();
  test_nested_inline();
  test_exception();
  test_step_team();
  test_several_callers();
  std::printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
