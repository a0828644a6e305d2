// The exchange of a partitioned stream (a super stream: warrenctl add_super_stream), type
// "x-super-stream". Its bindings are the partitions, in the order of their binding argument
// x-stream-partition-order (RabbitMQ's layout of a super stream: exchange NAME, streams
// NAME-0 .. NAME-N-1 bound with the keys "0" .. "N-1"). A message goes to exactly one
// partition, chosen by a hash of its routing key, as a keyed Kafka producer's record: the
// 32-bit MurmurHash3 with seed 104729 (what RabbitMQ's stream clients use), modulo the
// number of partitions. Messages without a routing key go to the partitions in turn. Adding
// partitions moves keys to other partitions from then on, as in Kafka.
#include <algorithm>
#include <cstring>
#include <limits>

#include "actors/exchange/exchange_type.hpp"

namespace warren::exchange {

uint32_t murmur3_32(std::string_view data, uint32_t seed) {
  constexpr uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
  auto rotl = [](uint32_t x, int r) { return (x << r) | (x >> (32 - r)); };
  uint32_t h = seed;
  size_t blocks = data.size() / 4;
  for (size_t i = 0; i < blocks; ++i) {
    uint32_t k;
    std::memcpy(&k, data.data() + i * 4, 4);  // little-endian, as the reference
    k *= c1;
    k = rotl(k, 15);
    k *= c2;
    h ^= k;
    h = rotl(h, 13);
    h = h * 5 + 0xe6546b64;
  }
  uint32_t k = 0;
  auto tail = reinterpret_cast<const unsigned char*>(data.data()) + blocks * 4;
  switch (data.size() & 3) {
    case 3: k ^= uint32_t{tail[2]} << 16; [[fallthrough]];
    case 2: k ^= uint32_t{tail[1]} << 8; [[fallthrough]];
    case 1:
      k ^= tail[0];
      k *= c1;
      k = rotl(k, 15);
      k *= c2;
      h ^= k;
  }
  h ^= static_cast<uint32_t>(data.size());
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

namespace {

constexpr uint32_t partition_seed = 104729;

struct partition {
  int64_t order = 0;
  std::string key;
  dest_id dest = 0;
  bool operator<(const partition& o) const {
    return order != o.order ? order < o.order : key < o.key;
  }
};

class super_stream final : public exchange_type {
public:
  void bind(const binding_key& b) override {
    partition p{std::numeric_limits<int64_t>::max(), b.key, b.dest};
    if (auto v = amqp::find_field(b.arguments, "x-stream-partition-order"))
      if (auto n = v->as_int())
        p.order = *n;
    partitions_.insert(std::upper_bound(partitions_.begin(), partitions_.end(), p), p);
  }
  void unbind(const binding_key& b) override {
    auto it = std::find_if(partitions_.begin(), partitions_.end(), [&](const partition& p) {
      return p.dest == b.dest && p.key == b.key;
    });
    if (it != partitions_.end())
      partitions_.erase(it);
  }
  void route(std::string_view routing_key, const amqp::field_table*,
             std::vector<dest_id>& out) const override {
    if (partitions_.empty())
      return;
    size_t i = routing_key.empty() ? next_++ % partitions_.size()
                                   : murmur3_32(routing_key, partition_seed) % partitions_.size();
    out.push_back(partitions_[i].dest);
  }

private:
  std::vector<partition> partitions_;  // in partition order
  mutable size_t next_ = 0;            // for messages without a key
};

}  // namespace

std::unique_ptr<exchange_type> make_super_stream() { return std::make_unique<super_stream>(); }

}  // namespace warren::exchange
