// Log-linear latency histogram: bucket arithmetic, merging, interval differences and
// percentiles (see perf_histogram.hpp for the layout).
#include "bench/perf_histogram.hpp"

#include <bit>
#include <cmath>

namespace warren::perf {

namespace {
constexpr uint64_t linear_limit = uint64_t{1} << hist_sub_bits;
constexpr uint64_t value_cap = (uint64_t{1} << (hist_max_log2 + 1)) - 1;
}  // namespace

size_t hist_index(uint64_t v) {
  if (v < linear_limit) return static_cast<size_t>(v);
  if (v > value_cap) v = value_cap;
  const int m = 63 - std::countl_zero(v);        // floor(log2 v) >= hist_sub_bits
  const int shift = m - hist_sub_bits + 1;        // >= 1
  const uint64_t sub = v >> shift;                // in [half, 2 * half)
  return static_cast<size_t>(static_cast<uint64_t>(shift) * hist_half + sub);
}

uint64_t hist_bucket_low(size_t index) {
  if (index < linear_limit) return index;
  const uint64_t shift = (index >> (hist_sub_bits - 1)) - 1;
  const uint64_t sub = index - shift * hist_half;
  return sub << shift;
}

uint64_t hist_bucket_high(size_t index) {
  if (index < linear_limit) return index + 1;
  const uint64_t shift = (index >> (hist_sub_bits - 1)) - 1;
  const uint64_t sub = index - shift * hist_half;
  return (sub + 1) << shift;
}

void histogram::record(uint64_t v, uint64_t n) {
  counts_[hist_index(v)] += n;
  total_ += n;
  if (v < min_) min_ = v;
  if (v > max_) max_ = v;
}

void histogram::merge(const histogram& other) {
  for (size_t i = 0; i < hist_buckets; ++i) counts_[i] += other.counts_[i];
  total_ += other.total_;
  if (other.total_ != 0) {
    if (other.min_ < min_) min_ = other.min_;
    if (other.max_ > max_) max_ = other.max_;
  }
}

histogram histogram::since(const histogram& older) const {
  histogram d;
  size_t first = hist_buckets, last = 0;
  for (size_t i = 0; i < hist_buckets; ++i) {
    const uint64_t c = counts_[i] >= older.counts_[i] ? counts_[i] - older.counts_[i] : 0;
    d.counts_[i] = c;
    d.total_ += c;
    if (c != 0) {
      if (first == hist_buckets) first = i;
      last = i;
    }
  }
  if (d.total_ != 0) {
    d.min_ = hist_bucket_low(first);
    d.max_ = hist_bucket_high(last) - 1;
    if (max_ < d.max_) d.max_ = max_;  // the running max is exact and bounds the interval's
  }
  return d;
}

void histogram::clear() { *this = histogram{}; }

uint64_t histogram::min() const { return total_ == 0 ? 0 : min_; }
uint64_t histogram::max() const { return max_; }

uint64_t histogram::percentile(double q) const {
  if (total_ == 0) return 0;
  if (q <= 0) return min();
  if (q >= 1) return max_;
  // Rank of the sample at quantile q, 1-based (nearest-rank method).
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < hist_buckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);
      uint64_t v = lo + (hi - lo) / 2;
      if (v < min_) v = min_;
      if (v > max_) v = max_;
      return v;
    }
  }
  return max_;
}

void latency_recorder::snapshot(histogram& out) const {
  out.total_ = 0;
  for (size_t i = 0; i < hist_buckets; ++i) {
    out.counts_[i] = counts_[i].load(std::memory_order_relaxed);
    out.total_ += out.counts_[i];
  }
  out.min_ = min_.load(std::memory_order_relaxed);
  out.max_ = max_.load(std::memory_order_relaxed);
}

}  // namespace warren::perf
