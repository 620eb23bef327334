#pragma once
// A per-thread thread count for the scope of a guard, overriding nc::set_num_threads on the
// calling thread only: an embedded-inference session with its own thread count runs each call
// under one, leaving the process-wide setting (and other sessions' calls) alone.
namespace nc {

class ThreadLimit {
 public:
  explicit ThreadLimit(int n);  // n <= 0: keep the process-wide setting
  ~ThreadLimit();
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  int prev_;
};

}  // namespace nc
