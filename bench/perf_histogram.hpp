// Latency histograms for warren-perf: log-linear buckets in the manner of HdrHistogram (a
// linear range, then each power of two split into 64 equal sub-buckets, so any recorded value
// is known to within ~1.6%). `histogram` is a plain value used for merging and percentiles;
// `latency_recorder` is written by exactly one consumer thread and read concurrently by the
// progress reporter, so its buckets are relaxed atomics (no locked instructions on record).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace warren::perf {

inline constexpr int hist_sub_bits = 7;                           // 2^7 linear values first
inline constexpr uint64_t hist_half = uint64_t{1} << (hist_sub_bits - 1);  // sub-buckets/octave
inline constexpr int hist_max_log2 = 40;                          // values clamp at ~18 min (ns)
inline constexpr size_t hist_buckets = (hist_max_log2 - hist_sub_bits + 2) * hist_half + hist_half;

// Bucket index of a value, and the range of values a bucket stands for.
size_t hist_index(uint64_t v);
uint64_t hist_bucket_low(size_t index);
uint64_t hist_bucket_high(size_t index);  // exclusive

class histogram {
public:
  void record(uint64_t v, uint64_t n = 1);
  void merge(const histogram& other);
  // Element-wise this - older, for the samples recorded since `older` was taken from the same
  // recorder. min/max of the difference are approximated by the buckets.
  histogram since(const histogram& older) const;
  void clear();

  uint64_t count() const { return total_; }
  uint64_t min() const;
  uint64_t max() const;
  // The value at quantile q (0..1): the midpoint of the bucket holding it, clamped to the
  // exact min and max when they are known; 0 when empty.
  uint64_t percentile(double q) const;

private:
  friend class latency_recorder;
  std::array<uint64_t, hist_buckets> counts_{};
  uint64_t total_ = 0;
  uint64_t min_ = UINT64_MAX;  // exact when recorded directly, else bucket bounds
  uint64_t max_ = 0;
};

class latency_recorder {
public:
  // Single writer: load + store, no read-modify-write, no lock prefix.
  void record(uint64_t v) {
    auto& c = counts_[hist_index(v)];
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (v > max_.load(std::memory_order_relaxed)) max_.store(v, std::memory_order_relaxed);
    if (v < min_.load(std::memory_order_relaxed)) min_.store(v, std::memory_order_relaxed);
  }
  // A consistent-enough copy for reporting (counts may be a few samples apart).
  void snapshot(histogram& out) const;

private:
  std::array<std::atomic<uint64_t>, hist_buckets> counts_{};
  std::atomic<uint64_t> min_{UINT64_MAX};
  std::atomic<uint64_t> max_{0};
};

}  // namespace warren::perf
