// Topic exchange (AMQP 0-9-1 §3.1.3.3): binding keys are dot-separated words where `*` matches
// exactly one word and `#` zero or more words. Bindings live in a trie over words with `*` and
// `#` edges, so routing walks the key once per live branch instead of testing every binding.
// Empty words are words too ("a..b" has three words, the middle one empty), but the empty key
// has none, as in RabbitMQ.
#include <algorithm>
#include <map>

#include "actors/exchange/exchange_type.hpp"

namespace warren::exchange {
namespace {

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> words;
  if (s.empty())
    return words;  // RabbitMQ: the empty key has no words, so `*` does not match it
  size_t start = 0;
  for (;;) {
    auto dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      words.push_back(s.substr(start));
      return words;
    }
    words.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
}

struct node {
  std::map<std::string, std::unique_ptr<node>, std::less<>> children;  // includes "*" and "#"
  std::vector<dest_id> dests;  // bindings ending here
  bool empty() const { return children.empty() && dests.empty(); }
};

class topic final : public exchange_type {
public:
  void bind(const binding_key& b) override {
    node* n = &root_;
    for (auto w : split_words(b.key)) {
      auto& child = n->children[std::string{w}];
      if (!child)
        child = std::make_unique<node>();
      n = child.get();
    }
    n->dests.push_back(b.dest);
  }

  void unbind(const binding_key& b) override {
    auto words = split_words(b.key);
    remove(root_, words, 0, b.dest);
  }

  void route(std::string_view key, const amqp::field_table*,
             std::vector<dest_id>& out) const override {
    auto words = split_words(key);
    match(root_, words, 0, out);
  }

private:
  static bool remove(node& n, const std::vector<std::string_view>& words, size_t i, dest_id d) {
    if (i == words.size()) {
      if (auto pos = std::find(n.dests.begin(), n.dests.end(), d); pos != n.dests.end())
        n.dests.erase(pos);
      return n.empty();
    }
    auto it = n.children.find(words[i]);
    if (it == n.children.end())
      return false;
    if (remove(*it->second, words, i + 1, d))
      n.children.erase(it);
    return n.empty();
  }

  static void match(const node& n, const std::vector<std::string_view>& words, size_t i,
                    std::vector<dest_id>& out) {
    auto hash = n.children.find(std::string_view{"#"});
    if (i == words.size()) {
      out.insert(out.end(), n.dests.begin(), n.dests.end());
      if (hash != n.children.end())  // `#` also matches zero words
        match(*hash->second, words, i, out);
      return;
    }
    bool wildcard_word = words[i] == "*" || words[i] == "#";  // those edges are tried below
    if (!wildcard_word)
      if (auto it = n.children.find(words[i]); it != n.children.end())
        match(*it->second, words, i + 1, out);
    if (auto star = n.children.find(std::string_view{"*"}); star != n.children.end())
      match(*star->second, words, i + 1, out);
    if (hash != n.children.end())
      for (size_t j = i; j <= words.size(); ++j)  // `#` swallows words i..j-1
        match(*hash->second, words, j, out);
  }

  node root_;
};

}  // namespace

std::unique_ptr<exchange_type> make_topic() { return std::make_unique<topic>(); }

}  // namespace warren::exchange
