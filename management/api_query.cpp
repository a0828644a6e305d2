// The query parameters RabbitMQ's API takes on what a GET answers (rabbit_mgmt_util):
// `columns` keeps only the keys named (dotted names reach into objects), `sort` and
// `sort_reverse` order a list, and `page` with `page_size`, `name` and `use_regex` filter a
// list and answer one page of it as an object that says where it is. Applied by the router to
// every GET, whichever handler answered it.
#include <algorithm>
#include <charconv>
#include <regex.h>

#include <memory>

#include "management/api.hpp"

namespace warren::mgmt {

namespace {

constexpr int64_t default_page_size = 100;
constexpr int64_t max_page_size = 500;

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    auto next = s.find(sep, pos);
    out.push_back(s.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
    if (next == std::string::npos)
      return out;
    pos = next + 1;
  }
}

// The value at a dotted path ("message_stats.publish"), or null.
const json* at_path(const json& j, const std::vector<std::string>& path) {
  const json* cur = &j;
  for (auto& key : path) {
    if (!cur->is_object())
      return nullptr;
    auto it = cur->find(key);
    if (it == cur->end())
      return nullptr;
    cur = &*it;
  }
  return cur;
}

// Only the columns named; a dotted column keeps that key of the object inside.
json keep_columns(const json& j, const std::vector<std::vector<std::string>>& columns) {
  if (!j.is_object())
    return j;
  json out = json::object();
  for (auto& path : columns) {
    auto v = at_path(j, path);
    if (!v)
      continue;
    json* dst = &out;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      auto& next = (*dst)[path[i]];
      if (!next.is_object())
        next = json::object();
      dst = &next;
    }
    (*dst)[path.back()] = *v;
  }
  return out;
}

// Erlang's term order, as RabbitMQ sorts: numbers, then atoms (null, false, true, and
// `undefined` for a missing key) by name, then strings; objects and lists last.
int rank(const json* v) {
  if (!v || v->is_null() || v->is_boolean())
    return 1;
  if (v->is_number())
    return 0;
  if (v->is_string())
    return 2;
  return 3;
}

std::string atom_name(const json* v) {
  if (!v)
    return "undefined";
  if (v->is_boolean())
    return v->get<bool>() ? "true" : "false";
  return "null";
}

bool sorts_before(const json* a, const json* b) {
  int ra = rank(a), rb = rank(b);
  if (ra != rb)
    return ra < rb;
  switch (ra) {
    case 0:
      return a->get<double>() < b->get<double>();
    case 1:
      return atom_name(a) < atom_name(b);
    case 2:
      return a->get_ref<const std::string&>() < b->get_ref<const std::string&>();
    default:
      return false;
  }
}

// A name filter with use_regex=true, as POSIX extended expressions matched without case by
// glibc's matcher. Back-references and counted repetition are refused: without them the
// matcher's work grows with the pattern's and the name's length only, so a filter cannot hold
// the HTTP thread (as a backtracking matcher can).
class name_regex {
public:
  static std::unique_ptr<name_regex> compile(const std::string& pattern) {
    if (pattern.size() > max_pattern)
      return nullptr;
    for (size_t i = 0; i < pattern.size(); ++i) {
      if (pattern[i] == '{')
        return nullptr;
      if (pattern[i] == '\\' && i + 1 < pattern.size() &&
          std::isdigit(static_cast<unsigned char>(pattern[i + 1])))
        return nullptr;
    }
    std::unique_ptr<name_regex> re{new name_regex};
    if (regcomp(&re->re_, pattern.c_str(), REG_EXTENDED | REG_ICASE | REG_NOSUB) != 0)
      return nullptr;
    re->compiled_ = true;
    return re;
  }
  ~name_regex() {
    if (compiled_)
      regfree(&re_);
  }
  name_regex(const name_regex&) = delete;
  name_regex& operator=(const name_regex&) = delete;

  bool search(const std::string& text) const {
    return text.find('\0') == std::string::npos &&
           regexec(&re_, text.c_str(), 0, nullptr, 0) == 0;
  }

private:
  static constexpr size_t max_pattern = 256;
  name_regex() = default;
  regex_t re_{};
  bool compiled_ = false;
};


}  // namespace

std::string lowercase(std::string s) {
  for (auto& ch : s)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

std::optional<int64_t> parse_int(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty())
    return std::nullopt;
  return v;
}

std::map<std::string, std::string> query_params(std::string_view query) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < query.size()) {
    auto amp = query.find('&', pos);
    auto pair = query.substr(pos, amp == std::string_view::npos ? std::string_view::npos
                                                                 : amp - pos);
    auto eq = pair.find('=');
    auto key = *percent_decode(pair.substr(0, eq), true);
    auto value = eq == std::string_view::npos ? std::string{}
                                              : *percent_decode(pair.substr(eq + 1), true);
    if (!key.empty())
      out.emplace(std::move(key), std::move(value));
    if (amp == std::string_view::npos)
      break;
    pos = amp + 1;
  }
  return out;
}

std::optional<reply> shape_answer(const std::string& query, json& body, bool pages) {
  if (query.empty() || !(body.is_array() || body.is_object()))
    return std::nullopt;
  auto params = query_params(query);
  auto param = [&](const char* key) -> const std::string* {
    auto it = params.find(key);
    return it == params.end() ? nullptr : &it->second;
  };
  std::vector<std::vector<std::string>> columns;
  if (auto c = param("columns"); c && !c->empty())
    for (auto& name : split(*c, ','))
      if (!name.empty())
        columns.push_back(split(name, '.'));
  if (body.is_object()) {
    if (!columns.empty())
      body = keep_columns(body, columns);
    return std::nullopt;
  }
  // Pagination: `page` turns it on (page_size alone does not); RabbitMQ's two errors.
  auto page_text = pages ? param("page") : nullptr;
  auto size_text = pages ? param("page_size") : nullptr;
  int64_t page = 0, page_size = default_page_size;
  std::unique_ptr<name_regex> re;
  if (page_text) {
    auto p = parse_int(*page_text);
    auto ps = size_text ? parse_int(*size_text) : std::optional<int64_t>{default_page_size};
    if (!p || !ps)
      return error_reply(400, "bad_request", "Pagination parameters are invalid");
    page = *p;
    page_size = *ps;
    if (page < 1 || page_size < 1 || page_size > max_page_size)
      return error_reply(400, "invalid_pagination_parameters",
                         "Invalid pagination parameters: page number " + std::to_string(page) +
                           ", page size " +
                           (size_text ? std::to_string(page_size) : std::string{"undefined"}));
    if (auto name = param("name"); name && !name->empty() && param("use_regex") &&
                                   *param("use_regex") == "true") {
      re = name_regex::compile(*name);
      if (!re)
        return error_reply(400, "bad_request", "Pagination parameters are invalid");
    }
  }
  // Sorted by `sort` (when given), then by vhost and name, as RabbitMQ's lists; reversed
  // whole by sort_reverse.
  auto sort = param("sort");
  auto reverse = param("sort_reverse");
  if ((sort && !sort->empty()) || reverse || page_text) {
    std::vector<std::vector<std::string>> keys;
    if (sort && !sort->empty())
      keys.push_back(split(*sort, '.'));
    keys.push_back({"vhost"});
    keys.push_back({"name"});
    std::stable_sort(body.begin(), body.end(), [&](const json& a, const json& b) {
      for (auto& k : keys) {
        auto x = at_path(a, k), y = at_path(b, k);
        if (sorts_before(x, y))
          return true;
        if (sorts_before(y, x))
          return false;
      }
      return false;
    });
    if (reverse && *reverse == "true")
      std::reverse(body.begin(), body.end());
  }
  if (!page_text) {
    if (!columns.empty())
      for (auto& item : body)
        item = keep_columns(item, columns);
    return std::nullopt;
  }
  auto total = static_cast<int64_t>(body.size());
  json items = json::array();
  if (auto name = param("name"); name && !name->empty()) {
    // Without case: a regular expression with use_regex=true, else a substring.
    auto needle = lowercase(*name);
    for (auto& item : body) {
      auto n = at_path(item, {"name"});
      if (!n || !n->is_string())
        continue;
      auto& text = n->get_ref<const std::string&>();
      if (re ? re->search(text) : lowercase(text).find(needle) != std::string::npos)
        items.push_back(std::move(item));
    }
  } else {
    items = std::move(body);
  }
  auto filtered = static_cast<int64_t>(items.size());
  auto page_count = (filtered + page_size - 1) / page_size;
  if (page > 1 && page > page_count)
    return error_reply(400, "page_out_of_range",
                       "Page out of range, page: " + std::to_string(page) +
                         " page size: " + std::to_string(page_size) +
                         ", len: " + std::to_string(filtered));
  auto first = std::min(filtered, (page - 1) * page_size);
  auto last = std::min(filtered, first + page_size);
  json slice = json::array();
  for (auto i = first; i < last; ++i)
    slice.push_back(columns.empty() ? std::move(items[i]) : keep_columns(items[i], columns));
  body = json{{"filtered_count", filtered},
              {"item_count", last - first},
              {"items", std::move(slice)},
              {"page", page},
              {"page_count", page_count},
              {"page_size", page_size},
              {"total_count", total}};
  return std::nullopt;
}

}  // namespace warren::mgmt
